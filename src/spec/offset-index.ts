// Where each node of a fast-path spec file starts, for positionOf: one Int32Array "tape" of
// collection records plus the list of mapping keys, written as the parsers close each collection.
// Objects or arrays per collection (one per workload, env, labels...) doubled what a 10,000-workload
// fleet allocated and kept the garbage collector busy tracing them; a typed array is one object
// whose contents it never traces.
//
// A record is a header `count << 1 | isMapping`, then per entry of a mapping `keyIndex, keyOffset,
// valueOffset, child` and per item of a sequence `itemOffset, child`, where `child` is the tape
// position of the entry's own record, or -1 for a scalar. Records are written when their collection
// closes, so children come before their parents and the top-level mapping is last. A key is found
// by its name in `keys`, or, with keyIndex -1, in the text at its offset: the plain-YAML scanner's
// keys are one-line plain or escape-free quoted scalars, and a list of 100,000 key strings was
// itself a cost to the garbage collector.

/** The finished index of one document. */
export interface OffsetIndex {
  /** Offset of the top-level node. */
  root: number;
  /** Tape position of the top-level node's record (-1 for a scalar). */
  rootRecord: number;
  tape: Int32Array;
  /** Mapping keys, by the keyIndex of their entries. */
  keys: string[];
}

/**
 * Whether the key written at `at` in `text` is `name`: a plain key (ended by `: ` or `:` at the
 * end of a line), or a quoted one without escapes (`''` aside in single quotes).
 */
function keyAt(text: string, at: number, name: string): boolean {
  const q = text.charCodeAt(at);
  let end: number;
  if (q === 0x22) {
    if (!text.startsWith(name, at + 1) || text.charCodeAt(at + 1 + name.length) !== 0x22) return false;
    end = at + name.length + 2;
  } else if (q === 0x27) {
    const quoted = name.includes("'") ? name.replace(/'/g, "''") : name;
    if (!text.startsWith(quoted, at + 1) || text.charCodeAt(at + 1 + quoted.length) !== 0x27) return false;
    end = at + quoted.length + 2;
  } else {
    if (!text.startsWith(name, at)) return false;
    end = at + name.length;
  }
  if (text.charCodeAt(end) !== 0x3a) return false;
  const after = text.charCodeAt(end + 1);
  return Number.isNaN(after) || after === 0x20 || after === 0x0a;
}

/** Builds an OffsetIndex: entries go onto a stack while their collection is open, then onto the tape. */
export class OffsetIndexWriter {
  private tape: Int32Array;
  private length = 0;
  private stack: Int32Array;
  /** Top of the entry stack; a collection remembers it when it opens (its base). */
  top = 0;
  readonly keys: string[] = [];

  /** `sizeHint`: the text's length, say; the tape grows as needed. */
  constructor(sizeHint: number) {
    this.tape = new Int32Array(Math.max(64, sizeHint >> 3));
    this.stack = new Int32Array(256);
  }

  private room(n: number): void {
    if (this.top + n > this.stack.length) {
      const s = new Int32Array(Math.max(this.stack.length * 2, this.top + n));
      s.set(this.stack);
      this.stack = s;
    }
  }

  /** One entry of the open mapping; `key` undefined: the key is found in the text at keyOffset. */
  mapEntry(key: string | undefined, keyOffset: number, valueOffset: number, child: number): void {
    this.room(4);
    const s = this.stack;
    const t = this.top;
    if (key === undefined) s[t] = -1;
    else {
      s[t] = this.keys.length;
      this.keys.push(key);
    }
    s[t + 1] = keyOffset;
    s[t + 2] = valueOffset;
    s[t + 3] = child;
    this.top = t + 4;
  }

  /** One item of the open sequence. */
  seqItem(offset: number, child: number): void {
    this.room(2);
    this.stack[this.top] = offset;
    this.stack[this.top + 1] = child;
    this.top += 2;
  }

  /** Closes the collection whose entries start at `base` on the stack; returns its tape position. */
  close(base: number, isMap: boolean): number {
    const n = this.top - base;
    if (this.length + n + 1 > this.tape.length) {
      const t = new Int32Array(Math.max(this.tape.length * 2, this.length + n + 1));
      t.set(this.tape.subarray(0, this.length));
      this.tape = t;
    }
    const at = this.length;
    const tape = this.tape;
    const stack = this.stack;
    tape[at] = ((isMap ? n >> 2 : n >> 1) << 1) | (isMap ? 1 : 0);
    // a loop, not set(subarray()): most collections hold a few entries, and a subarray is an object
    for (let i = 0; i < n; i++) tape[at + 1 + i] = stack[base + i] as number;
    this.length = at + 1 + n;
    this.top = base;
    return at;
  }

  finish(root: number, rootRecord: number): OffsetIndex {
    return { root, rootRecord, tape: this.tape.slice(0, this.length), keys: this.keys };
  }
}

function decodeSegment(s: string): string {
  return s.replace(/~1/g, '/').replace(/~0/g, '~');
}

/**
 * The offset of the node a JSON pointer names (`key`: of the last mapping entry's key), walking as
 * far as the document allows: a pointer into a missing key gives its parent's, exactly as the walk
 * over the yaml Document does. Cost O(depth × keys per mapping).
 */
export function offsetOf(index: OffsetIndex, text: string, pointer: string, which: 'key' | 'value'): number {
  const { tape, keys } = index;
  let node = index.rootRecord;
  let best = index.root;
  // Segments are read in place: this runs for every workload's position, a split per call adds up.
  const decode = pointer.includes('~');
  let from = pointer.charCodeAt(0) === 0x2f ? 1 : 0;
  let more = pointer !== '' && pointer !== '/';
  while (more) {
    const slash = pointer.indexOf('/', from);
    more = slash !== -1;
    const raw = more ? pointer.slice(from, slash) : pointer.slice(from);
    from = slash + 1;
    // A scalar or an empty collection: nothing deeper to point at.
    if (node < 0) break;
    const header = tape[node] as number;
    const count = header >> 1;
    if (count === 0) break;
    const seg = decode ? decodeSegment(raw) : raw;
    if ((header & 1) === 0) {
      const idx = Number(seg);
      if (!Number.isInteger(idx) || idx < 0 || idx >= count) break;
      const e = node + 1 + 2 * idx;
      best = tape[e] as number;
      node = tape[e + 1] as number;
    } else {
      let e = node + 1;
      const end = e + 4 * count;
      for (; e < end; e += 4) {
        const k = tape[e] as number;
        if (k >= 0 ? keys[k] === seg : keyAt(text, tape[e + 1] as number, seg)) break;
      }
      if (e >= end) break;
      best = tape[e + 1] as number;
      if (!more && which === 'key') break;
      best = tape[e + 2] as number;
      node = tape[e + 3] as number;
    }
  }
  return best;
}
