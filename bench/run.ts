/**
 * npm run bench [-- section…]: medians over BENCH_RUNS runs (default 10) of each section, with
 * the figure of a peer (podman, skopeo) from the same run where it is installed.
 *   pod       examples/pod.yaml up and teardown (nspod play vs podman kube play)
 *   network   CNI ADD/DEL, 20 pods started at once
 *   volumes   examples/volumes.yaml up and teardown (nspod play vs podman kube play)
 *   supervisor  death to restart, daemon CPU with probed pods, daemon RSS (no peer: podman has no
 *             probes without systemd)
 *   registry  pull of a ~180 MiB image from docker-registry on loopback, cold and warm (vs podman pull)
 */
import os from 'node:os';
import { RUNS } from './common.js';
import { podSection } from './pod.js';
import { networkSection } from './network.js';
import { volumesSection } from './volumes.js';
import { supervisorSection } from './supervisor.js';
import { registrySection } from './registry.js';

const sections: Record<string, () => void | Promise<void>> = {
  pod: podSection,
  network: networkSection,
  volumes: volumesSection,
  supervisor: supervisorSection,
  registry: registrySection,
};

const asked = process.argv.slice(2);
const unknown = asked.filter((s) => !(s in sections));
if (unknown.length) {
  console.error(`bench: unknown section(s) ${unknown.join(', ')} (sections: ${Object.keys(sections).join(', ')})`);
  process.exit(2);
}
console.log(`# nspod bench: ${RUNS} runs, ${os.cpus().length} cores, Linux ${os.release()}`);
for (const name of asked.length ? asked : Object.keys(sections)) await sections[name]!();
