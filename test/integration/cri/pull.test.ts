/**
 * CRI PullImage against a real registry (Debian's docker-registry on loopback, htpasswd auth):
 * the AuthConfig of the request is what lets the pull in; the pulled image is then known to
 * ImageStatus by its name and id, and a container runs from it.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openImageStore, ensureBusyboxImage } from '../../../src/image/index.js';
import { pushImage, saveCredentials } from '../../../src/image/registry/index.js';
import { realHost } from '../../../src/host/index.js';
import { makeHtpasswd, startRegistry } from '../image/registry-helpers.js';
import type { Registry } from '../image/registry-helpers.js';
import { codeOf, grpc, sandboxConfig, startCri } from './client.js';
import type { CriFixture } from './client.js';

describe('CRI PullImage from a registry with authentication', () => {
  let f: CriFixture;
  let reg: Registry;
  let dir: string;
  let ref: string;
  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'nspod-cri-reg-'));
    reg = await startRegistry(dir, { htpasswd: makeHtpasswd(dir, 'kube', 's3cret') });
    // an image pushed from a store of the test's own
    const store = openImageStore({ root: path.join(dir, 'store'), host: realHost });
    await ensureBusyboxImage(store);
    ref = `${reg.host}/cri/busybox:v1`;
    await store.tag('localhost/busybox:latest', ref);
    const authFile = path.join(dir, 'auth.json');
    await saveCredentials(authFile, reg.host, { username: 'kube', password: 's3cret' });
    await pushImage(store, ref, { authFile, env: { ...process.env, NSPOD_AUTH_FILE: authFile } });
    f = await startCri();
  });
  after(async () => {
    await f?.stop();
    await reg?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it(
    'pulls with the request’s credentials only, then runs a container from the image',
    { timeout: 120_000 },
    async () => {
      const denied = await codeOf(f.client.is('PullImage', { image: { image: ref } }));
      assert.notEqual(denied.code, grpc.status.OK);
      assert.match(denied.details, /auth|denied|401|unauthorized/i);
      assert.equal((await f.client.is('ImageStatus', { image: { image: ref } })).image, null, 'nothing pulled');
      const pulled = await f.client.is('PullImage', {
        image: { image: ref },
        auth: { username: 'kube', password: 's3cret', server_address: reg.host },
      });
      assert.match(pulled.image_ref, /^sha256:[0-9a-f]{64}$/);
      const st = await f.client.is('ImageStatus', { image: { image: ref } });
      assert.equal(st.image.id, pulled.image_ref);
      assert.ok((st.image.repo_tags as string[]).includes(ref));
      const config = sandboxConfig('pulled');
      const { pod_sandbox_id: podId } = await f.client.rs('RunPodSandbox', { config });
      const { container_id: id } = await f.client.rs('CreateContainer', {
        pod_sandbox_id: podId,
        sandbox_config: config,
        config: { metadata: { name: 'c' }, image: { image: ref }, command: ['sleep', '100'] },
      });
      await f.client.rs('StartContainer', { container_id: id });
      const ex = await f.client.rs('ExecSync', { container_id: id, cmd: ['echo', 'from-pulled'], timeout: 20 });
      assert.equal(ex.stdout.toString(), 'from-pulled\n');
      assert.equal((await f.client.rs('ContainerStatus', { container_id: id })).status.image_id, pulled.image_ref);
      await f.client.rs('RemovePodSandbox', { pod_sandbox_id: podId });
      await f.client.is('RemoveImage', { image: { image: ref } });
      assert.equal((await f.client.is('ImageStatus', { image: { image: ref } })).image, null, 'removed');
    },
  );
});
