/**
 * What runs behind a streaming session: exec (`runc exec`, through nspod-relay's pty when a TTY
 * is asked for, so the terminal can be resized), attach (the container's output as its monitor
 * logs it) and port-forward (nspod-relay joins the pod's network
 * namespace and connects to 127.0.0.1:<port>; a host-network pod is reached directly).
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { promises as fs } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Duplex, Readable } from 'node:stream';
import type { Runtime } from '../../pod/index.js';
import { descendants } from '../../pod/index.js';
import { runtimeGlobalArgs } from '../../oci/index.js';
import { followLog } from '../../monitor/index.js';
import type { PodRecord } from '../../state/index.js';
import type { Io } from './io.js';
import type { AttachSession, ExecSession } from './types.js';

export interface SessionDeps {
  rt: Runtime;
  /** path of native/nspod-relay */
  relay: string;
}

function killTree(pid: number): void {
  void descendants(pid).then((kids) => {
    for (const p of [pid, ...kids]) {
      try {
        process.kill(p, 'SIGKILL');
      } catch {}
    }
  });
}

function wire(child: ChildProcess, io: Io, onGone: () => void): void {
  if (io.stdin && child.stdin) {
    io.stdin.pipe(child.stdin);
    child.stdin.on('error', () => undefined);
  }
  child.stdout?.on('data', (b: Buffer) => io.stdout?.(b));
  child.stderr?.on('data', (b: Buffer) => io.stderr?.(b));
  io.events.on('close', onGone);
}

export async function runExec(d: SessionDeps, s: ExecSession, io: Io): Promise<void> {
  const rec = await d.rt.containerRecord(s.containerId);
  const info = await d.rt.runtime();
  const dir = path.join(d.rt.config.runRoot, 'exec');
  await fs.mkdir(dir, { recursive: true });
  const pidFile = path.join(dir, `${rec.id.slice(0, 12)}-${randomBytes(6).toString('hex')}.pid`);
  const exec = [...runtimeGlobalArgs(d.rt.ctx.runtimeRoot), 'exec', '--pid-file', pidFile];
  let child: ChildProcess;
  if (s.tty) {
    child = spawn(d.relay, ['pty', '--', info.path, ...exec, '--tty', '--env', 'TERM=xterm', rec.id, ...s.cmd], {
      stdio: ['pipe', 'pipe', 'pipe', 'pipe'],
    });
    const ctl = child.stdio[3] as NodeJS.WritableStream;
    if (io.size) ctl.write(`${io.size.width} ${io.size.height}\n`);
    io.events.on('resize', (w: number, h: number) => ctl.write(`${w} ${h}\n`));
  } else {
    child = spawn(info.path, [...exec, rec.id, ...s.cmd], { stdio: [s.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
  }
  wire(child, io, () => {
    void fs.readFile(pidFile, 'utf8').then(
      (t) => killTree(Number(t.trim())),
      () => undefined,
    );
    child.kill('SIGKILL');
  });
  await new Promise<void>((resolve) => {
    child.on('error', (e) => {
      io.finish({ error: `cannot run ${info.name} exec: ${e.message}` });
      resolve();
    });
    child.on('close', (code, signal) => {
      void fs.rm(pidFile, { force: true });
      io.finish({ exitCode: code ?? 128 + (signal === 'SIGKILL' ? 9 : 15), cmd: s.cmd });
      resolve();
    });
  });
}

/**
 * Attach streams the container's output as its monitor writes it (the CRI log file, followed
 * from its current end, stdout and stderr kept apart) until the container exits or the client
 * goes. nspod's containers have no stdin pipe, so input is not attached.
 */
export async function runAttach(d: SessionDeps, s: AttachSession, io: Io): Promise<void> {
  const rec = await d.rt.containerRecord(s.containerId);
  const start = await fs.stat(rec.logPath).then(
    (st) => st.size,
    () => 0,
  );
  const abort = new AbortController();
  io.events.on('close', () => abort.abort());
  try {
    await followLog(rec.logPath, {
      fromOffset: start,
      signal: abort.signal,
      onEntry: (e) => {
        const line = Buffer.from(`${e.line}\n`);
        if (e.stream === 'stderr' && io.stderr) io.stderr(line);
        else io.stdout?.(line);
      },
      done: async () => (await d.rt.containerStatus(rec.id).catch(() => undefined))?.state !== 'running',
    });
    io.finish({ exitCode: 0 });
  } catch (e) {
    io.finish({ error: `attach to container "${rec.name}": ${(e as Error).message}` });
  }
}

/**
 * Connects to `port` inside the pod and relays `input` → the connection → `output`. Resolves
 * with the relay's error text ('' when it ended cleanly).
 */
export function forwardPort(
  d: SessionDeps,
  pod: PodRecord,
  port: number,
  input: Readable,
  output: (b: Buffer) => void,
  onEnd: () => void,
): { done: Promise<string>; cancel: () => void } {
  const net_ = pod.sandbox.namespaces.net;
  if (!net_) {
    const sock: Duplex = net.connect({ host: '127.0.0.1', port });
    input.pipe(sock);
    sock.on('data', output);
    const done = new Promise<string>((resolve) => {
      sock.on('error', (e) => resolve(e.message));
      sock.on('close', () => {
        onEnd();
        resolve('');
      });
    });
    return { done, cancel: () => sock.destroy() };
  }
  const child = spawn(d.relay, ['netns', net_, String(port)], { stdio: ['pipe', 'pipe', 'pipe'] });
  input.pipe(child.stdin);
  child.stdin.on('error', () => undefined);
  child.stdout.on('data', output);
  let err = '';
  child.stderr.on('data', (b: Buffer) => (err += b.toString()));
  const done = new Promise<string>((resolve) => {
    child.on('close', (code) => {
      onEnd();
      resolve(code === 0 ? '' : err.trim() || `port-forward relay exited ${code}`);
    });
  });
  return { done, cancel: () => child.kill('SIGKILL') };
}
