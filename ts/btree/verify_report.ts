// What verify() reports (spec/file_format_v1.md §4.5): public result types, kept
// apart from the walk so the package's types do not reach the pager.

export interface VerifyProblem {
  /** The page the problem is in, or null for file-level problems. */
  pageId: number | null;
  code: 'unreadable' | 'type' | 'layout' | 'order' | 'range' | 'depth' | 'shared' | 'empty' | 'overflow' | 'freelist' | 'history' | 'leak' | 'count' | 'link' | 'txn';
  message: string;
}

export interface VerifyReport {
  ok: boolean;
  problems: VerifyProblem[];
  txnId: number;
  pageCount: number;
  /** Pages reachable from the root (tree and overflow). */
  treePages: number;
  freelistPages: number;
  historyPages: number;
  freePages: number;
  entries: number;
}
