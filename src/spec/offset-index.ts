// Where each node of a fast-path spec file starts, for positionOf: one Int32Array "tape" written as
// the parsers read. Objects or arrays per collection (one per workload, env, labels...) doubled what
// a 10,000-workload fleet allocated and kept the garbage collector busy tracing them; a typed array
// is one object whose contents it never traces.
//
// A mapping entry is written as soon as its value is read: `keyIndex, keyOffset, valueOffset,
// child, previousEntry`, where `child` is the tape position of the value's own record (-1 for a
// scalar) and previousEntry links the mapping's entries (-1 ends them). When the mapping closes its
// record follows: `count << 1 | 1, lastEntry`. Entries are written straight to the tape, never
// copied: there are far more of them than of anything else. A sequence's items gather on a stack
// while it is open (its items' own records come between them) and are copied out when it closes,
// as `count << 1, itemOffset, child, ...`, for direct access by index. A key is found by its name in
// `keys`, or, with keyIndex -1, in the text at its offset: the plain-YAML scanner's keys are
// one-line plain or escape-free quoted scalars, and a list of 100,000 key strings was itself a cost
// to the garbage collector.

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

/** Builds an OffsetIndex as a parser reads a document. */
export class OffsetIndexWriter {
  private tape: Int32Array;
  private length = 0;
  private stack: Int32Array;
  /** Top of the sequence item stack; a sequence remembers it when it opens (its base). */
  top = 0;
  readonly keys: string[] = [];

  /** `sizeHint`: the text's length, say; the tape grows as needed. */
  constructor(sizeHint: number) {
    this.tape = new Int32Array(Math.max(64, sizeHint >> 1));
    this.stack = new Int32Array(256);
  }

  private grow(n: number): void {
    const t = new Int32Array(Math.max(this.tape.length * 2, this.length + n));
    t.set(this.tape.subarray(0, this.length));
    this.tape = t;
  }

  /**
   * One entry of an open mapping, linked to the one before it (`previous`, -1 for the first);
   * returns its position, the next entry's `previous`. `key` undefined: the key is found in the
   * text at keyOffset.
   */
  mapEntry(key: string | undefined, keyOffset: number, valueOffset: number, child: number, previous: number): number {
    if (this.length + 5 > this.tape.length) this.grow(5);
    const t = this.tape;
    const at = this.length;
    if (key === undefined) t[at] = -1;
    else {
      t[at] = this.keys.length;
      this.keys.push(key);
    }
    t[at + 1] = keyOffset;
    t[at + 2] = valueOffset;
    t[at + 3] = child;
    t[at + 4] = previous;
    this.length = at + 5;
    return at;
  }

  /** Closes a mapping of `count` entries, the last at `last`; returns its record's position. */
  closeMap(count: number, last: number): number {
    if (this.length + 2 > this.tape.length) this.grow(2);
    const at = this.length;
    this.tape[at] = (count << 1) | 1;
    this.tape[at + 1] = last;
    this.length = at + 2;
    return at;
  }

  /** One item of the open sequence. */
  seqItem(offset: number, child: number): void {
    if (this.top + 2 > this.stack.length) {
      const s = new Int32Array(this.stack.length * 2);
      s.set(this.stack);
      this.stack = s;
    }
    this.stack[this.top] = offset;
    this.stack[this.top + 1] = child;
    this.top += 2;
  }

  /** Closes the sequence whose items start at `base` on the stack; returns its record's position. */
  closeSeq(base: number): number {
    const n = this.top - base;
    if (this.length + n + 1 > this.tape.length) this.grow(n + 1);
    const at = this.length;
    this.tape[at] = (n >> 1) << 1;
    this.tape.set(this.stack.subarray(base, this.top), at + 1);
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
      let e = tape[node + 1] as number;
      for (; e >= 0; e = tape[e + 4] as number) {
        const k = tape[e] as number;
        if (k >= 0 ? keys[k] === seg : keyAt(text, tape[e + 1] as number, seg)) break;
      }
      if (e < 0) break;
      best = tape[e + 1] as number;
      if (!more && which === 'key') break;
      best = tape[e + 2] as number;
      node = tape[e + 3] as number;
    }
  }
  return best;
}
