// The one place untrusted text is made safe for a terminal and a spreadsheet (src/core/text.ts).
import { describe, expect, it } from 'vitest';
import { csvCell, displayWidth, formatTable, paint, safeTerminalText, sgr, TABLE_RULE, withoutStyles } from '../../src/core/text.js';

describe('safeTerminalText', () => {
  it('shows control characters instead of sending them; keeps tab and newline', () => {
    expect(safeTerminalText('a\u001b]0;title\u0007b')).toBe('a\\u001b]0;title\\u0007b');
    expect(safeTerminalText('x\u009b2Jy\u202ez\r\n\tok')).toBe('x\\u009b2Jy\\u202ez\\u000d\n\tok');
    expect(safeTerminalText('plain — unicode ✓')).toBe('plain — unicode ✓');
  });

  it("turns only spotfleet's own style markers into escape sequences", () => {
    expect(safeTerminalText(`${sgr(31)}red${sgr(0)}`)).toBe('\u001b[31mred\u001b[0m');
    // A user string cannot forge the marker: it is random per process; raw ESC is escaped.
    expect(safeTerminalText('\u001b[31mred')).toBe('\\u001b[31mred');
    expect(withoutStyles(`${sgr(1)}bold${sgr(22)}`)).toBe('bold');
  });
});

describe('csvCell', () => {
  it('neutralises formulas and quotes as RFC 4180 says', () => {
    expect(csvCell('=1+1')).toBe("'=1+1");
    expect(csvCell('+cmd')).toBe("'+cmd");
    expect(csvCell('@SUM(A1)')).toBe("'@SUM(A1)");
    expect(csvCell('-2+3')).toBe("'-2+3");
    expect(csvCell('\tx')).toBe("'\tx");
    expect(csvCell('=HYPERLINK("http://x","y")')).toBe(`"'=HYPERLINK(""http://x"",""y"")"`);
    expect(csvCell('a,b')).toBe('"a,b"');
    // Numbers, and strings that are plain numbers, stay numbers.
    expect(csvCell(-3.5)).toBe('-3.5');
    expect(csvCell('-3.5000')).toBe('-3.5000');
    expect(csvCell('team-a')).toBe('team-a');
  });
});

describe('displayWidth and formatTable', () => {
  it('counts terminal columns, not UTF-16 code units', () => {
    expect(displayWidth('abc')).toBe(3);
    expect(displayWidth('東京-1a')).toBe(7);
    expect(displayWidth('e\u0301')).toBe(1);
    expect(displayWidth('🚀x')).toBe(3);
    expect(displayWidth('©')).toBe(1);
    expect(displayWidth(`${sgr(31)}red${sgr(39)}`)).toBe(3);
    // Printed as the visible \u001b.
    expect(displayWidth('a\u001bb')).toBe(8);
  });

  it('aligns columns by display width, with right-aligned numbers, an indent and a rule', () => {
    const lines = formatTable([['ZONE', 'GPUS', 'NOTE'], ['東京-1a', '4', 'x'], TABLE_RULE, ['us-east-1a', '12', '']], { align: ['left', 'right'], indent: '  ' });
    expect(lines).toEqual(['  ZONE        GPUS  NOTE', '  東京-1a        4  x', '  ----------  ----  ----', '  us-east-1a    12']);
  });
});

describe('paint', () => {
  it("styles with node's codes only when colour is on, and only through the Io's markers", () => {
    expect(paint({ color: false }, 'red', 'Error:')).toBe('Error:');
    expect(paint({ color: true }, undefined, 'x')).toBe('x');
    expect(safeTerminalText(paint({ color: true }, 'red', 'Error:'))).toBe('\u001b[31mError:\u001b[39m');
    expect(safeTerminalText(paint({ color: true }, 'bold', 'x'))).toBe('\u001b[1mx\u001b[22m');
    expect(withoutStyles(paint({ color: true }, 'magenta', 'x'))).toBe('x');
  });
});
