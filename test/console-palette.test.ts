/**
 * The console's palette (console/src/palette.ts, pure): a color named like a hue is drawn in that hue, the first
 * seven colors of a policy have seven different hues, and no two colors of one policy (up to 42) share both hue and
 * pattern, so colors are told apart without seeing hues.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { colorStyle, HUES } from '../console/src/palette.ts';

const OKABE_BLUE = '#0072B2';
const OKABE_VERMILLION = '#D55E00';
const OKABE_GREEN = '#009E73';

test('blue is drawn blue, red vermillion, green green, whatever their order in the policy', () => {
  for (const colors of [['blue', 'red', 'green'], ['green', 'red', 'blue'], ['pepsi', 'coke', 'red', 'blue', 'green']]) {
    assert.equal(colorStyle(colors, 'blue').hue, OKABE_BLUE, colors.join());
    assert.equal(colorStyle(colors, 'red').hue, OKABE_VERMILLION, colors.join());
    assert.equal(colorStyle(colors, 'green').hue, OKABE_GREEN, colors.join());
  }
});

test('seven colors, named or not, take seven different hues', () => {
  for (const colors of [['pepsi', 'coke', 'infra', 'a', 'b', 'c', 'd'], ['blue', 'navy', 'red', 'x', 'y', 'z', 'w']]) {
    assert.equal(new Set(colors.map((c) => colorStyle(colors, c).hue)).size, 7, colors.join());
  }
  assert.equal(HUES.length, 7);
});

test('up to 42 colors, no two share both hue and pattern', () => {
  const colors = Array.from({ length: 42 }, (_, i) => (i === 5 ? 'blue' : i === 9 ? 'red' : `color-${i}`));
  const looks = colors.map((c) => { const s = colorStyle(colors, c); return `${s.hue} ${s.pattern}`; });
  assert.equal(new Set(looks).size, 42);
});
