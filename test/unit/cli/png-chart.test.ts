// The PNG encoder and chart, checked without a screenshot: the file parses
// (signature, chunk CRCs, IHDR size and format), its pixel data inflates to
// exactly height x (1 + 3 x width) bytes, and each series' colour is drawn.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { crc32, renderChart } from '../../../src/cli/png-chart.ts';
import { countColor, parsePng } from '../../fixtures/png.ts';

describe('png chart', () => {
  it('writes a valid RGB PNG of the requested size with every series drawn', () => {
    const series = [
      { name: 'limit', color: [214, 39, 40] as const, values: [100, 100, 50, 50] },
      { name: 'demand', color: [31, 119, 180] as const, values: [10, 80, 120, 30] },
      { name: 'granted', color: [44, 160, 44] as const, values: [10, 80, 50, Number.NaN] },
    ];
    const p = parsePng(renderChart({ width: 321, height: 157, title: 'p/s (tokens/s)', xLabels: ['12:00', '13:00'], series }));
    assert.deepEqual([p.width, p.height, p.bitDepth, p.colorType], [321, 157, 8, 2]);
    for (const s of series) assert.ok(countColor(p, s.color) > 50, `${s.name} is drawn`);
    assert.ok(countColor(p, [255, 255, 255]) > p.width * p.height * 0.5, 'mostly background');
  });

  it('crc32 matches the reference value', () => {
    assert.equal(crc32(Buffer.from('123456789')), 0xcbf43926);
  });
});
