/**
 * Bench section: pull + unpack of a locally built multi-layer image (~180 MiB in 6 layers) from
 * Debian's docker-registry on 127.0.0.1, cold (empty store) and warm (every layer present),
 * medians over the runs; where podman or skopeo is installed, the same pull by the peer in the
 * same run and the ratio.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { realHost } from '../src/host/index.js';
import { openImageStore } from '../src/image/index.js';
import { pushImage } from '../src/image/registry/push.js';
import { buildImage, startRegistry } from '../test/integration/image/registry-helpers.js';
import { RUNS, cli, fmt, stat } from './common.js';
import type { Stat } from './common.js';

function timed(cmd: string, args: string[], env: NodeJS.ProcessEnv): number {
  const t0 = performance.now();
  const r = spawnSync(cmd, args, { env, encoding: 'utf8' });
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return ms;
}

const LAYERS = 5;
const FILES_PER_LAYER = 18;
const FILE_SIZE = 2 * 1024 * 1024;

/** podman pull into its own storage, cold; or a string saying why there is no figure. */
function peerPull(ref: string, runs: number, dir: string): { name: string; cold: Stat; warm?: Stat } | string {
  if (spawnSync('podman', ['--version']).status === 0) {
    const cold: number[] = [];
    const warm: number[] = [];
    for (let i = 0; i < runs; i++) {
      const root = path.join(dir, `podman-${i}`);
      const args = ['--root', `${root}/storage`, '--runroot', `${root}/run`, '--storage-driver', 'overlay'];
      try {
        cold.push(timed('podman', [...args, 'pull', '-q', '--tls-verify=false', ref], process.env));
      } finally {
        spawnSync('podman', [...args, 'rmi', '-af']);
        spawnSync('umount', ['-R', `${root}/storage/overlay`]);
        rmSync(root, { recursive: true, force: true });
      }
    }
    const root = path.join(dir, 'podman-warm');
    const args = ['--root', `${root}/storage`, '--runroot', `${root}/run`, '--storage-driver', 'overlay'];
    try {
      timed('podman', [...args, 'pull', '-q', '--tls-verify=false', ref], process.env);
      for (let i = 0; i < runs; i++) {
        warm.push(timed('podman', [...args, 'pull', '-q', '--tls-verify=false', ref], process.env));
      }
    } finally {
      spawnSync('podman', [...args, 'rmi', '-af']);
      spawnSync('umount', ['-R', `${root}/storage/overlay`]);
      rmSync(root, { recursive: true, force: true });
    }
    return { name: 'podman pull', cold: stat(cold), warm: stat(warm) };
  }
  if (spawnSync('skopeo', ['--version']).status === 0) {
    const cold: number[] = [];
    for (let i = 0; i < runs; i++) {
      const out = path.join(dir, `skopeo-${i}`);
      try {
        cold.push(
          timed('skopeo', ['copy', '-q', '--src-tls-verify=false', `docker://${ref}`, `oci:${out}:x`], process.env),
        );
      } finally {
        rmSync(out, { recursive: true, force: true });
      }
    }
    return { name: 'skopeo copy (no unpack)', cold: stat(cold) };
  }
  return 'peer not installed (podman, skopeo)';
}

/** Runs the section and prints it. */
export async function registrySection(): Promise<void> {
  const runs = RUNS;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nspod-bench-registry-'));
  mkdirSync(path.join(dir, 'registry'));
  const registry = await startRegistry(path.join(dir, 'registry'));
  try {
    const src = openImageStore({ root: path.join(dir, 'src'), host: realHost });
    const layers = Array.from({ length: LAYERS }, (_, l) => [
      { name: `data${l}/`, type: 'dir' as const },
      ...Array.from({ length: FILES_PER_LAYER }, (_, f) => ({
        name: `data${l}/f${f}.bin`,
        // half random, half repetitive: compresses roughly like real binaries
        body: Buffer.concat([randomBytes(FILE_SIZE / 2), Buffer.alloc(FILE_SIZE / 2, `${l}-${f} `)]),
      })),
    ]);
    const img = await buildImage(src, 'localhost/bench:1', layers);
    const ref = `${registry.host}/bench/big:1`;
    await pushImage(src, 'localhost/bench:1', { destination: ref, registries: { search: [], registries: {} } });
    const mib = (img.size / 1024 / 1024).toFixed(0);
    console.log(
      `\nnspod pull from docker-registry on loopback (${img.layers.length} layers, ${mib} MiB compressed, ${((LAYERS * FILES_PER_LAYER * FILE_SIZE) / 1024 / 1024).toFixed(0)} MiB unpacked), ${runs} runs:`,
    );
    const env = (root: string): NodeJS.ProcessEnv => ({
      ...process.env,
      NSPOD_ROOT: root,
      NSPOD_RUN_ROOT: path.join(dir, 'run'),
      NSPOD_AUTH_FILE: path.join(dir, 'auth.json'),
    });
    const cold: number[] = [];
    for (let i = 0; i < runs; i++) {
      const root = path.join(dir, `cold-${i}`);
      try {
        cold.push(timed('node', [cli, 'pull', '-q', ref], env(root)));
      } finally {
        rmSync(root, { recursive: true, force: true });
      }
    }
    const warmRoot = path.join(dir, 'warm');
    timed('node', [cli, 'pull', '-q', ref], env(warmRoot));
    const warm: number[] = [];
    for (let i = 0; i < runs; i++) warm.push(timed('node', [cli, 'pull', '-q', ref], env(warmRoot)));
    const c = stat(cold);
    console.log(`  cold        ${fmt(c)}   (${(img.size / 1024 / 1024 / (c.median / 1000)).toFixed(0)} MiB/s)`);
    const w = stat(warm);
    console.log(`  warm        ${fmt(w)}   (every layer present)`);
    const peer = peerPull(ref, runs, dir);
    if (typeof peer === 'string') {
      console.log(`  peer: ${peer}`);
    } else {
      console.log(`  ${peer.name} cold  ${fmt(peer.cold)}`);
      if (peer.warm) console.log(`  ${peer.name} warm  ${fmt(peer.warm)}`);
      console.log(`  ratio nspod/peer cold (median): ${(c.median / peer.cold.median).toFixed(2)}   (target <= 1)`);
      if (peer.warm) console.log(`  ratio nspod/peer warm (median): ${(w.median / peer.warm.median).toFixed(2)}`);
    }
  } finally {
    await registry.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
