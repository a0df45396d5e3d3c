import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { installRootOf, underOwnRoot } from '../../src/install/root-of';

test('the install root of code inside a release, through current or not', () => {
  assert.equal(installRootOf('/opt/twill/releases/0.1.0-20261206-abc/dist/src/cmd'), '/');
  assert.equal(installRootOf('/run/twill-lab/lab/root/opt/twill/current/dist/src/cmd'), '/run/twill-lab/lab/root');
  assert.equal(installRootOf('/run/twill-lab/lab/root/opt/twill/releases/x/dist/src'), '/run/twill-lab/lab/root');
  assert.equal(installRootOf('/home/me/twill/dist/src/cmd'), undefined);
});

test('caches and settings live under the own root: the lab leaves nothing machine-wide', () => {
  assert.equal(underOwnRoot('/run/twill-lab/lab/root/opt/twill/releases/x/dist/src/cmd', 'var/cache/twill/twilld'), '/run/twill-lab/lab/root/var/cache/twill/twilld');
  assert.equal(underOwnRoot('/opt/twill/releases/x/dist/src/cmd', 'var/cache/twill/cni'), '/var/cache/twill/cni');
  assert.equal(underOwnRoot('/home/me/twill/dist/src/cmd', 'var/cache/twill/cni'), '/var/cache/twill/cni');
});
