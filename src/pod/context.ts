/**
 * What every pod operation needs: configuration, the host adapter, the stores and drivers of
 * the layers below. Built once by `openRuntime`, passed down explicitly (no globals).
 */
import type { Config } from '../config/index.js';
import type { Host } from '../host/index.js';
import type { StateStore } from '../state/index.js';
import type { ImageStore } from '../image/index.js';
import type { Cgroups, CgroupLayout } from '../cgroups/index.js';
import type { RuntimeInfo } from '../oci/index.js';
import type { PodNetworks } from '../network/cni/index.js';

export interface Context {
  config: Config;
  host: Host;
  state: StateStore;
  images: ImageStore;
  cgroupLayout: CgroupLayout;
  cgroups: Cgroups;
  /** CNI networks of pods */
  networks: PodNetworks;
  /** detected lazily: only operations that run containers need it */
  runtime(): Promise<RuntimeInfo>;
  /** the OCI runtime's --root */
  runtimeRoot: string;
  /** progress lines for the CLI (`image: unpacking`, `sandbox: ready` …) */
  onProgress?: (step: string, detail: string) => void;
}
