/**
 * events/: what happened to pods and containers, as Kubernetes events (Normal/Warning, a reason,
 * a message), appended as JSON lines to `<root>/events.log`. Appends of one line are atomic
 * (O_APPEND, one write), so the CLI and the supervisor daemon write the same log safely.
 *
 * Reasons used: Pulled, Created, Started, Killing, Unhealthy, BackOff, OOMKilled, Completed,
 * Failed, FailedPostStartHook, FailedPreStopHook, SupervisorStarted, Adopted, ExitedWhileAway.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { hasErrno } from '../errors/index.js';

export type EventType = 'Normal' | 'Warning';

export interface PodEvent {
  time: string;
  type: EventType;
  reason: string;
  /** `pod/<name>` or `pod/<name>/<container>` */
  object: string;
  podId?: string;
  pod?: string;
  container?: string;
  message: string;
}

export interface EventInput {
  type?: EventType;
  reason: string;
  pod?: { id: string; name: string };
  container?: string;
  message: string;
}

export function eventsFile(root: string): string {
  return path.join(root, 'events.log');
}

export interface EventLog {
  readonly file: string;
  emit(e: EventInput): Promise<PodEvent>;
  /** several events, appended in one write (in this order) */
  emitAll(es: EventInput[]): Promise<PodEvent[]>;
  /** all events (optionally of one pod id), oldest first */
  list(o?: { podId?: string }): Promise<PodEvent[]>;
  /** calls onEvent for each event appended after `fromOffset` until the signal aborts */
  follow(o: { fromOffset: number; onEvent: (e: PodEvent) => void; signal: AbortSignal }): Promise<void>;
  size(): Promise<number>;
}

function parseLines(text: string): PodEvent[] {
  const out: PodEvent[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    try {
      out.push(JSON.parse(line) as PodEvent);
    } catch {} // a torn last line of a crashed writer
  }
  return out;
}

export function openEventLog(root: string): EventLog {
  const file = eventsFile(root);
  const log: EventLog = {
    file,
    async emit(e) {
      return (await log.emitAll([e]))[0]!;
    },
    async emitAll(es) {
      const time = new Date().toISOString();
      const evs: PodEvent[] = es.map((e) => ({
        time,
        type: e.type ?? 'Normal',
        reason: e.reason,
        object: e.pod ? `pod/${e.pod.name}${e.container ? `/${e.container}` : ''}` : 'nspod',
        ...(e.pod ? { podId: e.pod.id, pod: e.pod.name } : {}),
        ...(e.container ? { container: e.container } : {}),
        message: e.message,
      }));
      if (evs.length === 0) return evs;
      await fs.mkdir(path.dirname(file), { recursive: true });
      // One append: the lines land together, whole (O_APPEND), whatever other writers do.
      await fs.appendFile(file, evs.map((ev) => JSON.stringify(ev) + '\n').join(''));
      return evs;
    },
    async list(o = {}) {
      let text: string;
      try {
        text = await fs.readFile(file, 'utf8');
      } catch (e) {
        if (hasErrno(e, 'ENOENT')) return [];
        throw e;
      }
      const all = parseLines(text);
      return o.podId ? all.filter((e) => e.podId === o.podId) : all;
    },
    async size() {
      try {
        return (await fs.stat(file)).size;
      } catch {
        return 0;
      }
    },
    async follow(o) {
      let offset = o.fromOffset;
      let partial = '';
      while (!o.signal.aborted) {
        const size = await log.size();
        if (size < offset) offset = 0;
        if (size > offset) {
          const fh = await fs.open(file, 'r');
          try {
            const buf = Buffer.alloc(size - offset);
            await fh.read(buf, 0, buf.length, offset);
            offset = size;
            const text = partial + buf.toString('utf8');
            const cut = text.lastIndexOf('\n');
            partial = text.slice(cut + 1);
            for (const e of parseLines(text.slice(0, cut + 1))) o.onEvent(e);
          } finally {
            await fh.close();
          }
        }
        await new Promise<void>((r) => {
          const onAbort = () => (clearTimeout(t), r());
          const t = setTimeout(() => (o.signal.removeEventListener('abort', onAbort), r()), 200);
          o.signal.addEventListener('abort', onAbort, { once: true });
        });
      }
    },
  };
  return log;
}
