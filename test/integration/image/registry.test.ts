/**
 * Pull and push against a real registry (Debian's docker-registry, distribution 2.8) on
 * 127.0.0.1: once plain HTTP, once TLS with a test CA and htpasswd basic auth. Every check reads
 * what is really on disk: the registry's storage, the store's blob files (hashed again), the
 * unpacked layers, and files inside a running container.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { realHost } from '../../../src/host/index.js';
import { MediaType, openImageStore } from '../../../src/image/index.js';
import type { ImageInfo } from '../../../src/image/index.js';
import { RegistryClient } from '../../../src/image/registry/client.js';
import { destroySandbox, makeSandbox, nspod, nspodOk } from '../helpers.js';
import type { Sandbox } from '../helpers.js';
import {
  buildImage,
  freePort,
  makeCerts,
  makeHtpasswd,
  noise,
  sha256,
  startProxy,
  startRegistry,
} from './registry-helpers.js';
import type { Registry } from './registry-helpers.js';

const tag = randomBytes(4).toString('hex');
const BIG = noise(3 * 1024 * 1024, `big-${tag}`);

const list = (dir: string): string[] => (existsSync(dir) ? readdirSync(dir).sort() : []);
const blobFiles = (root: string): string[] => list(path.join(root, 'images', 'blobs', 'sha256'));
const layerDirs = (root: string): string[] => list(path.join(root, 'layers'));

/** Every stored blob hashes to its name. */
function assertBlobsIntact(root: string): void {
  for (const f of blobFiles(root)) {
    assert.equal(sha256(readFileSync(path.join(root, 'images', 'blobs', 'sha256', f))), `sha256:${f}`, `blob ${f}`);
  }
}

/** Nothing of a failed pull stays: no blob, layer, download or image. */
async function assertEmptyStore(s: Sandbox): Promise<void> {
  assert.deepEqual(blobFiles(s.root), [], 'no blobs');
  assert.deepEqual(layerDirs(s.root), [], 'no unpacked layers (nor temp dirs)');
  assert.deepEqual(list(path.join(s.root, 'images', 'ingest')), [], 'no partial downloads');
  assert.deepEqual(JSON.parse(await nspodOk(s, ['images', '-o', 'json'])), []);
}

describe('registry: push and pull against docker-registry', () => {
  let tmp: string;
  let sb: Sandbox;
  let plain: Registry;
  let secure: Registry;
  let img: ImageInfo;
  let certs: { ca: string; cert: string; key: string };
  const registries: Registry[] = [];

  /** A sandbox sharing sb's run root and cgroup parent but with an empty store. */
  const fresh = async (): Promise<Sandbox> => {
    const root = await mkdtemp(path.join(tmp, 'root-'));
    return { ...sb, root, env: { ...sb.env, NSPOD_ROOT: root } };
  };

  /** A sandbox of its own (run root, cgroup parent) for tests that run pods. */
  const podSandbox = async (): Promise<Sandbox> => {
    const s = await makeSandbox();
    return {
      ...s,
      env: { ...s.env, NSPOD_REGISTRIES_CONF: sb.env.NSPOD_REGISTRIES_CONF, NSPOD_AUTH_FILE: sb.env.NSPOD_AUTH_FILE },
    };
  };

  before(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), `nspod-registry-${tag}-`));
    sb = await makeSandbox();
    for (const d of ['plain', 'secure', 'certs']) mkdirSync(path.join(tmp, d));
    certs = makeCerts(path.join(tmp, 'certs'));
    const htpasswd = makeHtpasswd(path.join(tmp, 'certs'), 'alice', 's3cret');
    plain = await startRegistry(path.join(tmp, 'plain'));
    registries.push(plain);
    secure = await startRegistry(path.join(tmp, 'secure'), { tls: certs, htpasswd });
    registries.push(secure);
    const conf = path.join(tmp, 'registries.json');
    writeFileSync(conf, JSON.stringify({ registries: { [secure.host]: { insecure: false, caFile: certs.ca } } }));
    sb.env = { ...sb.env, NSPOD_REGISTRIES_CONF: conf, NSPOD_AUTH_FILE: path.join(tmp, 'auth.json') };
    const store = openImageStore({ root: sb.root, host: realHost });
    img = await buildImage(
      store,
      'localhost/regtest:1',
      [
        [
          { name: 'data/', type: 'dir' },
          { name: 'data/a.txt', body: 'layer two\n' },
          { name: 'data/keep.txt', body: 'keep\n' },
        ],
        [{ name: 'data/big.bin', body: BIG }],
        [
          { name: 'data/a.txt', body: 'layer four\n' },
          { name: 'data/.wh.keep.txt', body: '' },
        ],
      ],
      ['sh', '-c', 'cat /data/a.txt; ls /data; sha256sum /data/big.bin'],
    );
  });

  after(async () => {
    for (const r of registries) await r.stop();
    await destroySandbox(sb);
    await rm(tmp, { recursive: true, force: true });
  });

  it('pushes a multi-layer image (chunked uploads), then finds every blob present', async () => {
    const dest = `${plain.host}/team/app:v1`;
    const r = await nspod(sb, ['push', 'localhost/regtest:1', dest, '--chunk-size', String(1024 * 1024)]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`@${img.manifestDigest}`));
    for (const l of [...img.layers.map((x) => x.digest), img.id]) {
      const hex = l.slice(7);
      const file = path.join(
        plain.dir,
        'data',
        'docker',
        'registry',
        'v2',
        'blobs',
        'sha256',
        hex.slice(0, 2),
        hex,
        'data',
      );
      assert.equal(sha256(readFileSync(file)), l, `registry holds ${l}`);
    }
    const again = await nspod(sb, ['push', 'localhost/regtest:1', dest]);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(again.stderr.match(/: exists/g)?.length, img.layers.length + 1, again.stderr);
  });

  it('pulls by tag and by digest into empty stores: verified, unpacked, and not fetched twice', async () => {
    const a = await fresh();
    const r = await nspod(a, ['pull', `${plain.host}/team/app:v1`]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(img.manifestDigest));
    assertBlobsIntact(a.root);
    assert.deepEqual(
      blobFiles(a.root),
      [...img.layers.map((l) => l.digest), img.id, img.manifestDigest].map((d) => d.slice(7)).sort(),
    );
    assert.deepEqual(layerDirs(a.root), img.diffIds.map((d) => d.slice(7)).sort());
    const top = path.join(a.root, 'layers', img.diffIds[3]!.slice(7));
    assert.equal(readFileSync(path.join(top, 'data', 'a.txt'), 'utf8'), 'layer four\n');
    const again = await nspod(a, ['pull', `${plain.host}/team/app:v1`]);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(again.stderr.match(/: exists/g)?.length, img.layers.length, again.stderr);
    assert.match(again.stdout, /0B downloaded/);

    const b = await fresh();
    const id = (await nspodOk(b, ['pull', '-q', `${plain.host}/team/app@${img.manifestDigest}`])).trim();
    assert.equal(id, img.id);
    assertBlobsIntact(b.root);
    const missing = await nspod(b, ['pull', `${plain.host}/team/app:nope`]);
    assert.equal(missing.code, 3, missing.stderr);
    assert.match(missing.stderr, /team\/app:nope": manifest unknown/);
    const noRepo = await nspod(b, ['pull', `${plain.host}/team/nothing:v1`]);
    assert.equal(noRepo.code, 3, noRepo.stderr);
    assert.match(noRepo.stderr, /unknown/);
  });

  it('tries mirrors first and search registries in order, skipping those that are down', async () => {
    const dead = `127.0.0.1:${await freePort()}`;
    const mirror = await startProxy(plain.port, {});
    try {
      const conf = path.join(tmp, 'registries-mirrors.json');
      writeFileSync(
        conf,
        JSON.stringify({
          search: [dead, plain.host],
          registries: { [plain.host]: { mirrors: [dead, mirror.host] } },
        }),
      );
      const s = await fresh();
      const env = { ...s, env: { ...s.env, NSPOD_REGISTRIES_CONF: conf } };
      const r = await nspod(env, ['pull', 'team/app:v1']);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`^${plain.host}/team/app:v1 `));
      assert.ok(
        mirror.requests.some((u) => u === '/v2/team/app/manifests/v1'),
        'the manifest came through the mirror',
      );
      assert.ok(
        mirror.requests.some((u) => u.startsWith('/v2/team/app/blobs/')),
        'blobs came through the mirror',
      );
      const images = JSON.parse(await nspodOk(s, ['images', '-o', 'json'])) as Array<{ names: string[] }>;
      assert.deepEqual(images[0]?.names, [`${plain.host}/team/app:v1`], 'named after the registry, not the mirror');
    } finally {
      await mirror.close();
    }
  });

  it('runs a pod from a pulled image and reports a failed pull on the pod', async () => {
    const ref = `${plain.host}/team/app:v1`;
    const yaml = (name: string, image: string, policy: string) => `
apiVersion: v1
kind: Pod
metadata: { name: ${name} }
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  containers:
    - name: main
      image: ${image}
      imagePullPolicy: ${policy}
`;
    const p = await podSandbox();
    try {
      await nspodOk(p, ['play', '-'], { input: yaml(`pulled-${tag}`, ref, 'Always') });
      const logs = await nspod(p, ['logs', '-f', `pulled-${tag}`]);
      assert.equal(logs.code, 0, logs.stderr);
      const lines = logs.stdout.split('\n');
      assert.equal(lines[0], 'layer four');
      assert.ok(lines.includes('big.bin') && lines.includes('a.txt'), logs.stdout);
      assert.ok(!lines.includes('keep.txt'), 'the whiteout hid keep.txt');
      assert.ok(logs.stdout.includes(sha256(BIG).slice(7)), 'big.bin intact inside the container');
      // Events say what happened: pulled for this pod, not "already present".
      const events = JSON.parse(await nspodOk(p, ['events', '--pod', `pulled-${tag}`, '-o', 'json'])) as Array<{
        reason: string;
        message: string;
      }>;
      const pullEvents = events.filter((e) => e.reason.startsWith('Pull')).map((e) => `${e.reason}: ${e.message}`);
      assert.deepEqual(pullEvents, [`Pulling: Pulling image "${ref}"`, `Pulled: Successfully pulled image "${ref}"`]);
      await nspodOk(p, ['rm', '-f', `pulled-${tag}`]);

      const failed = await nspod(p, ['play', '-'], {
        input: yaml(`nope-${tag}`, `${plain.host}/team/app:nope`, 'IfNotPresent'),
      });
      assert.equal(failed.code, 3, failed.stderr);
      assert.match(
        failed.stderr,
        /spec\.containers\[0\]\.image: image ".*" is not present and cannot be pulled: .*manifest unknown/,
      );
      const never = await nspod(p, ['play', '-'], {
        input: yaml(`never-${tag}`, `${plain.host}/team/other:v1`, 'Never'),
      });
      assert.equal(never.code, 5, never.stderr);
      assert.match(never.stderr, /imagePullPolicy is Never/);
      assert.deepEqual(JSON.parse(await nspodOk(p, ['pods', '-o', 'json'])), []);
    } finally {
      await destroySandbox(p);
    }
  });

  it('rejects a blob altered in transit and stores nothing', async () => {
    const big = img.layers[2]!.digest;
    const proxy = await startProxy(plain.port, { tamper: big });
    try {
      const s = await fresh();
      const r = await nspod(s, ['pull', `${proxy.host}/team/app:v1`]);
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, new RegExp(`layer ${big} has digest sha256:[0-9a-f]{64} .*content was altered`));
      assert.ok(proxy.ranges.length >= 1, 'the altered blob was served');
      await assertEmptyStore(s);
    } finally {
      await proxy.close();
    }
  });

  it('resumes a layer cut mid-way, and fails cleanly when it is cut every time', async () => {
    const big = img.layers[2]!.digest;
    const once = await startProxy(plain.port, { cut: { digest: big, times: 1 } });
    try {
      const s = await fresh();
      const r = await nspod(s, ['pull', `${once.host}/team/app:v1`]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, new RegExp(`${big.slice(7, 19)}: retrying`), 'the retry is shown');
      assert.equal(once.ranges[0], 'none');
      assert.match(once.ranges[1] ?? '', /^bytes=[1-9]\d*-$/, 'the second GET resumed where the first was cut');
      assertBlobsIntact(s.root);
      assert.ok(blobFiles(s.root).includes(big.slice(7)));
    } finally {
      await once.close();
    }
    const always = await startProxy(plain.port, { cut: { digest: big, times: 1000 } });
    try {
      const s = await fresh();
      const r = await nspod(s, ['pull', `${always.host}/team/app:v1`]);
      assert.equal(r.code, 6, r.stderr);
      assert.match(r.stderr, /connection ended after \d+ of \d+ bytes|other side closed|ECONNRESET|socket/);
      assert.ok(always.ranges.length >= 2, 'retried');
      await assertEmptyStore(s);
    } finally {
      await always.close();
    }
  });

  it('names the platforms present when a manifest list has no linux/amd64', async () => {
    await nspodOk(sb, ['push', 'localhost/regtest:1', `${plain.host}/team/multi:base`]);
    const manifest = readFileSync(path.join(sb.root, 'images', 'blobs', 'sha256', img.manifestDigest.slice(7)));
    const entry = (architecture: string, variant?: string) => ({
      mediaType: MediaType.ociManifest,
      digest: img.manifestDigest,
      size: manifest.length,
      platform: { os: 'linux', architecture, ...(variant ? { variant } : {}) },
    });
    const index = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.ociIndex,
        manifests: [entry('arm64', 'v8'), entry('s390x')],
      }),
    );
    const client = new RegistryClient({ registry: plain.host, config: { search: [], registries: {} } });
    try {
      await client.putManifest('team/multi', 'v1', index, MediaType.ociIndex);
    } finally {
      await client.close();
    }
    const s = await fresh();
    const r = await nspod(s, ['pull', `${plain.host}/team/multi:v1`]);
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /no image for linux\/amd64 .*platforms present: linux\/arm64\/v8, linux\/s390x/);
    await assertEmptyStore(s);
    const id = (await nspodOk(s, ['pull', '-q', '--platform', 'linux/s390x', `${plain.host}/team/multi:v1`])).trim();
    assert.equal(id, img.id);
  });

  it('refuses layers that escape with ../ or through an absolute symlink', async () => {
    const store = openImageStore({ root: sb.root, host: realHost });
    const outside = path.join(tmp, `outside-${tag}`);
    mkdirSync(outside);
    const climb = `${'../'.repeat(12)}${outside.slice(1)}/climbed`;
    await buildImage(store, 'localhost/esc:dots', [[{ name: climb, body: 'x' }]]);
    await buildImage(store, 'localhost/esc:link', [
      [
        { name: 'lnk', type: 'symlink', linkname: outside },
        { name: 'lnk/pwned', body: 'x' },
      ],
    ]);
    for (const [src, why] of [
      ['localhost/esc:dots', /escapes the layer root/],
      ['localhost/esc:link', /written through symlink "lnk" -> ".*" that leaves the layer root/],
    ] as const) {
      const dest = `${plain.host}/team/esc:${src.split(':')[1]}`;
      await nspodOk(sb, ['push', src, dest]);
      const s = await fresh();
      const r = await nspod(s, ['pull', dest]);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, why);
      assert.deepEqual(readdirSync(outside), [], 'nothing written outside');
      await assertEmptyStore(s);
    }
  });

  it('two concurrent pulls of one image end with one copy of each blob', async () => {
    const s = await fresh();
    const rs = await Promise.all([
      nspod(s, ['pull', `${plain.host}/team/app:v1`]),
      nspod(s, ['pull', `${plain.host}/team/app:v1`]),
    ]);
    for (const r of rs) assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(
      blobFiles(s.root),
      [...img.layers.map((l) => l.digest), img.id, img.manifestDigest].map((d) => d.slice(7)).sort(),
    );
    assertBlobsIntact(s.root);
    assert.deepEqual(layerDirs(s.root), img.diffIds.map((d) => d.slice(7)).sort(), 'one dir per layer, no temp dirs');
    assert.deepEqual(list(path.join(s.root, 'images', 'ingest')), []);
    assert.deepEqual(list(path.join(s.root, 'images', 'inflight')), []);
    const images = JSON.parse(await nspodOk(s, ['images', '-o', 'json'])) as Array<{ names: string[] }>;
    assert.equal(images.length, 1);
    assert.deepEqual(images[0]!.names, [`${plain.host}/team/app:v1`]);
  });

  it('GC removes only what nothing references, never what a running container uses', async () => {
    const s = await podSandbox();
    try {
      await gcChecks(s);
    } finally {
      await destroySandbox(s);
    }
  });

  async function gcChecks(s: Sandbox): Promise<void> {
    await nspodOk(s, ['pull', `${plain.host}/team/app:v1`]);
    // the busybox image shares the bottom layer with the pulled one
    const bb = await (
      await import('../../../src/image/index.js')
    ).ensureBusyboxImage(openImageStore({ root: s.root, host: realHost }));
    assert.equal(bb.layers[0]!.digest, img.layers[0]!.digest);
    await nspodOk(s, ['rmi', `${plain.host}/team/app:v1`]);
    assert.deepEqual(blobFiles(s.root), [bb.layers[0]!.digest, bb.id, bb.manifestDigest].map((d) => d.slice(7)).sort());
    assert.deepEqual(layerDirs(s.root), [bb.diffIds[0]!.slice(7)]);

    // prune -a: the image a running pod uses stays, the other goes
    await nspodOk(s, ['pull', `${plain.host}/team/app:v1`]);
    const pod = `gc-${tag}`;
    try {
      await nspodOk(s, ['play', '-'], {
        input: `apiVersion: v1\nkind: Pod\nmetadata: { name: ${pod} }\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n    - name: main\n      image: localhost/busybox:latest\n      command: ['sleep', '3600']\n`,
      });
      const out = await nspodOk(s, ['image', 'prune', '-a']);
      assert.match(out, new RegExp(`Deleted: ${img.id}`));
      assert.deepEqual(
        blobFiles(s.root),
        [bb.layers[0]!.digest, bb.id, bb.manifestDigest].map((d) => d.slice(7)).sort(),
      );
      assert.deepEqual(layerDirs(s.root), [bb.diffIds[0]!.slice(7)]);
      assert.equal((await nspodOk(s, ['exec', pod, '--', 'cat', '/etc/group'])).includes('root:x:0:'), true);
      const nothing = await nspodOk(s, ['image', 'prune']);
      assert.match(nothing, /Removed 0 images, 0 blobs, 0 unpacked layers/);
    } finally {
      await nspod(s, ['rm', '-f', pod]);
    }
  }

  it('TLS with a test CA and basic auth: refused without login, wrong password, login, push, pull', async () => {
    const ref = `${secure.host}/team/app:v1`;
    const authFile = sb.env.NSPOD_AUTH_FILE!;
    const s = await fresh();
    const anon = await nspod(s, ['pull', ref]);
    assert.equal(anon.code, 5, anon.stderr);
    assert.match(anon.stderr, /access denied \(not logged in\)/);

    const wrong = await nspod(sb, ['login', secure.host, '-u', 'alice', '--password-stdin'], { input: 'wrong\n' });
    assert.equal(wrong.code, 5, wrong.stderr);
    assert.match(wrong.stderr, /authentication failed for user "alice"/);
    assert.equal(existsSync(authFile), false, 'no credentials stored after a failed login');

    const ok = await nspod(sb, ['login', secure.host, '-u', 'alice', '--password-stdin'], { input: 's3cret\n' });
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /Login Succeeded/);
    assert.equal(statSync(authFile).mode & 0o777, 0o600);
    const auths = (JSON.parse(readFileSync(authFile, 'utf8')) as { auths: Record<string, { auth: string }> }).auths;
    assert.equal(Buffer.from(auths[secure.host]!.auth, 'base64').toString(), 'alice:s3cret');

    await nspodOk(sb, ['push', 'localhost/regtest:1', ref]);
    const id = (await nspodOk(s, ['pull', '-q', ref])).trim();
    assert.equal(id, img.id);
    assertBlobsIntact(s.root);

    // without the test CA the certificate is not trusted
    const noCa = path.join(tmp, 'registries-noca.json');
    writeFileSync(noCa, JSON.stringify({ registries: { [secure.host]: { insecure: false } } }));
    const t = await fresh();
    const untrusted = await nspod({ ...t, env: { ...t.env, NSPOD_REGISTRIES_CONF: noCa } }, ['pull', ref]);
    assert.equal(untrusted.code, 6, untrusted.stderr);
    assert.match(untrusted.stderr, /certificate/i);

    assert.match(await nspodOk(sb, ['logout', secure.host]), /Removed login credentials/);
    const after = await nspod(t, ['pull', ref]);
    assert.equal(after.code, 5, after.stderr);
  });
});
