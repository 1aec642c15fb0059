/**
 * nspod's RuntimeDefault seccomp profile: everything is allowed except the system calls that
 * reach outside a container's namespaces or change the whole machine (kernel modules, kexec,
 * reboot, clocks, swap, accounting, keyrings, BPF, perf, ptrace of other processes' memory,
 * userfaultfd, open_by_handle_at …); those fail with EPERM. It is a deny-list written for
 * nspod, narrower than an allow-list profile but simple to audit. Syscall names unknown to the
 * host's libseccomp are skipped by the runtime.
 */
import type { OciSeccomp } from './types.js';

export const DENIED_SYSCALLS = [
  'acct',
  'add_key',
  'bpf',
  'clock_adjtime',
  'clock_settime',
  'create_module',
  'delete_module',
  'finit_module',
  'fsconfig',
  'fsmount',
  'fsopen',
  'fspick',
  'get_kernel_syms',
  'get_mempolicy',
  'init_module',
  'ioperm',
  'iopl',
  'kcmp',
  'kexec_file_load',
  'kexec_load',
  'keyctl',
  'lookup_dcookie',
  'mbind',
  'move_mount',
  'move_pages',
  'nfsservctl',
  'open_by_handle_at',
  'open_tree',
  'perf_event_open',
  'pivot_root',
  'process_vm_readv',
  'process_vm_writev',
  'quotactl',
  'reboot',
  'request_key',
  'set_mempolicy',
  'setns',
  'settimeofday',
  'stime',
  'swapoff',
  'swapon',
  'sysfs',
  '_sysctl',
  'umount',
  'uselib',
  'userfaultfd',
  'ustat',
  'vm86',
  'vm86old',
];

export function runtimeDefaultSeccomp(): OciSeccomp {
  return {
    defaultAction: 'SCMP_ACT_ALLOW',
    architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32', 'SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM'],
    syscalls: [{ names: [...DENIED_SYSCALLS], action: 'SCMP_ACT_ERRNO', errnoRet: 1 }],
  };
}
