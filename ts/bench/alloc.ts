// Allocation accounting of a measured loop, in whichever thread runs it (the
// runner's main thread, or a benchmark's worker thread): v8.GCProfiler records
// the heap statistics before and after every GC inside the loop. Bytes
// allocated = growth of used heap over the loop + what each GC freed; the same
// for V8's external memory (ArrayBuffer/Buffer backing stores).

import * as v8 from 'node:v8';
import * as vm from 'node:vm';

let gcFn: (() => void) | null = null;

/** A full GC of this thread's heap, if V8 lets us have one (--expose-gc set at run time). */
export function collectGarbage(): void {
  if (gcFn === null) {
    try {
      v8.setFlagsFromString('--expose-gc');
      gcFn = vm.runInNewContext('gc') as () => void;
    } catch {
      gcFn = () => {};
    }
  }
  gcFn();
}

export interface Allocated {
  jsBytes: number;
  externalBytes: number;
  gcCount: number;
}

/**
 * Starts counting this thread's allocations; stop() returns them. Call it
 * right before the loop (it allocates itself) and stop() right after.
 */
export function allocMeter(): { stop(): Allocated } {
  const profiler = new v8.GCProfiler();
  profiler.start();
  const h0 = v8.getHeapStatistics();
  return {
    stop(): Allocated {
      const h1 = v8.getHeapStatistics();
      const gcs = profiler.stop()?.statistics ?? [];
      let jsFreed = 0;
      let extFreed = 0;
      for (const g of gcs) {
        jsFreed += g.beforeGC.heapStatistics.usedHeapSize - g.afterGC.heapStatistics.usedHeapSize;
        extFreed += g.beforeGC.heapStatistics.externalMemory - g.afterGC.heapStatistics.externalMemory;
      }
      return {
        jsBytes: Math.max(0, h1.used_heap_size - h0.used_heap_size + jsFreed),
        externalBytes: Math.max(0, h1.external_memory - h0.external_memory + extFreed),
        gcCount: gcs.length,
      };
    },
  };
}
