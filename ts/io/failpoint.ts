// Named crash windows (issue: hardening). Every write and sync step of commit,
// checkpoint, log append and truncation calls failpoint(name) first, so a test
// can stop or kill the process exactly there. In normal runs the hook is null
// and a failpoint costs one load and one compare.

/** The windows, in the order a commit and a checkpoint pass them (spec/file_format_v1.md §8). */
export const FAILPOINTS = [
  // commit (spec §8.1)
  'beforePageWrite',
  'afterPageWrite',
  'beforeLogAppend',
  'beforeLogSync',
  'afterLogSync',
  'afterCommitPublish',
  // checkpoint (spec §8.2)
  'beforeCheckpointLogSync',
  'midCheckpointPages',
  'beforeCheckpointSync',
  'beforeMetaWrite',
  'beforeMetaSync',
  'afterMetaSync',
  // log maintenance
  'beforeLogTruncate',
  'midLogTruncate',
  'beforeLogCompactRename',
] as const;
export type FailpointName = (typeof FAILPOINTS)[number];

let hook: ((name: FailpointName) => void) | null = null;

/** Marks a crash window. */
export function failpoint(name: FailpointName): void {
  if (hook !== null) hook(name);
}

/** Installs (or with null, removes) the function called at every failpoint. Tests only. */
export function setFailpointHook(f: ((name: FailpointName) => void) | null): void {
  hook = f;
}
