// --dataplane auto: the probe asks the kernel to create a VXLAN link and classifies the answer;
// the choice and its reason are what the daemon logs. A fake handle stands in for netlink.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as os from 'node:os';
import { NetlinkError } from '../../src/netlink/errors';
import type { NetlinkHandle } from '../../src/netlink/handle';
import { canCreateKernelVxlan, chooseDataplane } from '../../src/userspace/select';

function fakeHandle(createErr?: Error) {
  const calls: string[] = [];
  let created: string | undefined;
  const h = {
    createVxlan(v: { name: string; vni: number }) {
      calls.push(`create ${v.name} vni ${v.vni}`);
      if (createErr) throw createErr;
      created = v.name;
    },
    getLink(name: string) {
      calls.push(`get ${name}`);
      return name === created ? { index: 99, name } : undefined;
    },
    deleteLink(l: { name: string }) {
      calls.push(`delete ${l.name}`);
      created = undefined;
    },
  };
  return { h: h as unknown as NetlinkHandle, calls };
}

const errno = os.constants.errno;

test('probe: a created link is deleted again and means "kernel"', () => {
  const { h, calls } = fakeHandle();
  const r = canCreateKernelVxlan(h);
  assert.equal(r.ok, true);
  assert.match(calls[0]!, /^create twprobe[0-9a-f]{6} vni 16777215$/);
  assert.ok(calls.at(-1)!.startsWith('delete twprobe'), 'probe link removed');
  assert.ok(calls[0]!.split(' ')[1]!.length <= 15, 'name fits IFNAMSIZ');
});

test('probe: EOPNOTSUPP (no vxlan module) or EPERM mean "no", with the errno name as reason', () => {
  for (const [e, name] of [[errno.EOPNOTSUPP, 'EOPNOTSUPP'], [errno.EPERM, 'EPERM']] as const) {
    const { h, calls } = fakeHandle(new NetlinkError(e, 'create', 'link twprobe'));
    assert.deepEqual(canCreateKernelVxlan(h), { ok: false, reason: name });
    assert.equal(calls.filter((c) => c.startsWith('delete')).length, 0);
  }
  const { h } = fakeHandle(new NetlinkError(errno.EEXIST, 'create', 'link twprobe'));
  assert.equal(canCreateKernelVxlan(h).ok, true, 'EEXIST: vxlan exists in this kernel');
});

test('auto chooses by the probe; explicit modes never probe', () => {
  const yes = fakeHandle();
  assert.deepEqual(chooseDataplane('auto', yes.h), { mode: 'kernel', reason: 'auto: the kernel can create VXLAN devices' });
  const no = fakeHandle(new NetlinkError(errno.EOPNOTSUPP, 'create', 'link twprobe'));
  assert.deepEqual(chooseDataplane('auto', no.h), { mode: 'userspace', reason: 'auto: the kernel cannot create a VXLAN device (EOPNOTSUPP)' });
  const explicit = fakeHandle();
  assert.equal(chooseDataplane('userspace', explicit.h).mode, 'userspace');
  assert.equal(chooseDataplane('kernel', explicit.h).mode, 'kernel');
  assert.equal(explicit.calls.length, 0);
});
