/** Limits of the host that containers must stay within (root may lack CAP_SYS_RESOURCE). */
import { readFileSync } from 'node:fs';

export interface HostLimits {
  nofile: number;
  nproc: number;
  /** this process's oom_score_adj: a container may not ask for less without CAP_SYS_RESOURCE */
  oomScoreAdj: number;
}

function hardLimit(text: string, label: string, fallback: number): number {
  const line = text.split('\n').find((l) => l.startsWith(label));
  if (!line) return fallback;
  const cols = line.slice(label.length).trim().split(/\s+/);
  const hard = cols[1];
  if (hard === undefined || hard === 'unlimited') return fallback;
  const n = Number.parseInt(hard, 10);
  return Number.isFinite(n) ? n : fallback;
}

let cached: HostLimits | undefined;

export function hostLimits(): HostLimits {
  if (cached) return cached;
  const text = readFileSync('/proc/self/limits', 'utf8');
  let oom = 0;
  try {
    oom = Number.parseInt(readFileSync('/proc/self/oom_score_adj', 'utf8').trim(), 10) || 0;
  } catch {}
  cached = {
    nofile: Math.min(hardLimit(text, 'Max open files', 1048576), 1048576),
    nproc: hardLimit(text, 'Max processes', 1048576),
    oomScoreAdj: oom,
  };
  return cached;
}
