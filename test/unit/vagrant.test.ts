// `vagrant validate` on vagrant/Vagrantfile, when vagrant is installed. No provider (VirtualBox,
// libvirt) is needed for that with --ignore-provider; vagrant's state and home go to a
// temporary directory so the repository gets no .vagrant/.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';

const DIR = path.resolve(__dirname, '../../../vagrant');
const probe = spawnSync('vagrant', ['--version'], { encoding: 'utf8' });
const skip = probe.error ? 'vagrant is not installed' : false;

test('vagrant validate accepts the Vagrantfile', { skip, timeout: 120_000 }, () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'twill-vagrant-'));
  try {
    const r = spawnSync('vagrant', ['validate', '--ignore-provider'], {
      cwd: DIR,
      encoding: 'utf8',
      env: { ...process.env, VAGRANT_CWD: DIR, VAGRANT_DOTFILE_PATH: path.join(tmp, 'dot'), VAGRANT_HOME: path.join(tmp, 'home'), VAGRANT_CHECKPOINT_DISABLE: '1' },
      timeout: 110_000,
    });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /validated successfully/);
    for (const vm of ['tw1', 'tw2', 'tw3']) assert.match(r.stdout, new RegExp(`==> ${vm}:`));
    assert.ok(!fs.existsSync(path.join(DIR, '.vagrant')), 'no .vagrant/ left in the repository');
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

test('provision.sh is valid bash and pins twilld to the private-network NIC', () => {
  const r = spawnSync('bash', ['-n', path.join(DIR, 'provision.sh')], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const text = fs.readFileSync(path.join(DIR, 'provision.sh'), 'utf8');
  assert.match(text, /twillctl\.js install --etcd-endpoints "http:\/\/\$\{TWILL_ETCD_IP\}:2379" --iface "\$iface"/);
  assert.ok((fs.statSync(path.join(DIR, 'provision.sh')).mode & 0o111) !== 0, 'provision.sh is executable');
});
