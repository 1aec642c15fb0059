/**
 * The CRI container log format, as conmon's k8s-file driver writes it:
 *   <RFC3339Nano timestamp> <stdout|stderr> <F|P> <content>
 * `P` marks a partial line whose rest follows in the next entry; `F` ends a line.
 */
import { promises as fs, watch } from 'node:fs';
import { hasErrno } from '../errors/index.js';

export interface LogEntry {
  time: string;
  stream: 'stdout' | 'stderr';
  /** a whole line, partial entries joined */
  line: string;
}

export function parseLogLine(
  raw: string,
): { time: string; stream: 'stdout' | 'stderr'; partial: boolean; content: string } | undefined {
  const m = /^(\S+) (stdout|stderr) ([FP]) ?(.*)$/.exec(raw);
  if (!m) return undefined;
  return { time: m[1]!, stream: m[2] as 'stdout' | 'stderr', partial: m[3] === 'P', content: m[4] ?? '' };
}

/** Joins partial entries; `pending` keeps an unfinished line per stream between calls. */
function assemble(lines: string[], pending: Map<string, string>): LogEntry[] {
  const out: LogEntry[] = [];
  for (const raw of lines) {
    const e = parseLogLine(raw);
    if (!e) continue;
    const acc = (pending.get(e.stream) ?? '') + e.content;
    if (e.partial) {
      pending.set(e.stream, acc);
      continue;
    }
    pending.delete(e.stream);
    out.push({ time: e.time, stream: e.stream, line: acc });
  }
  return out;
}

export async function readLog(file: string, opts: { tail?: number } = {}): Promise<LogEntry[]> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (e) {
    if (hasErrno(e, 'ENOENT')) return [];
    throw e;
  }
  const entries = assemble(text.split('\n'), new Map());
  return opts.tail !== undefined ? entries.slice(Math.max(0, entries.length - opts.tail)) : entries;
}

/**
 * Calls onEntry for every entry appended to the log after `fromOffset` until `done()` is true
 * after a read, or the signal aborts. Reads on file-change notifications and every 250 ms.
 */
export async function followLog(
  file: string,
  opts: { fromOffset: number; onEntry: (e: LogEntry) => void; done: () => Promise<boolean>; signal?: AbortSignal },
): Promise<void> {
  let offset = opts.fromOffset;
  let rest = '';
  const pending = new Map<string, string>();
  let wake: (() => void) | undefined;
  let watcher: ReturnType<typeof watch> | undefined;
  try {
    watcher = watch(file, () => wake?.());
  } catch {}
  try {
    for (;;) {
      // Decide before reading: an exit seen now means everything it logged is already on disk.
      const finished = opts.signal?.aborted === true || (await opts.done());
      let fh;
      try {
        fh = await fs.open(file, 'r');
      } catch (e) {
        if (!hasErrno(e, 'ENOENT')) throw e;
      }
      if (fh) {
        try {
          const { size } = await fh.stat();
          if (size > offset) {
            const buf = Buffer.alloc(size - offset);
            await fh.read(buf, 0, buf.length, offset);
            offset = size;
            const text = rest + buf.toString('utf8');
            const parts = text.split('\n');
            rest = parts.pop() ?? '';
            for (const e of assemble(parts, pending)) opts.onEntry(e);
          }
        } finally {
          await fh.close();
        }
      }
      if (finished) return;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 250);
        wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
  } finally {
    watcher?.close();
  }
}
