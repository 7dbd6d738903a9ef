'use strict';
// Unit tests of the next-edit helpers (plain node: `node --test editors/vscode/test/`), run by
// tests/test_vscode_next_edit.py. The rendering in a real VS Code is tested end to end by
// tests/test_inline_vscode.py.
const test = require('node:test');
const assert = require('node:assert/strict');
const ne = require('../lib/nextEdit');

const OLD = 'def surface(w, h):\n    return w * h\n\n\nprint(area(2, 3))\nprint(area(4, 5))\n';
const LINES = OLD.split('\n');
const pos = (line, character) => ({ line, character });
const edit = (sl, sc, el, ec, newText) => ({ range: { start: pos(sl, sc), end: pos(el, ec) }, newText });
// What spark_ls/server/next_edit.py returns for the rename: two minimal edits, one replacement.
const RESULT = {
  uri: 'file:///w/shapes.py',
  version: 7,
  edits: [edit(4, 6, 4, 10, 'surface'), edit(5, 6, 5, 10, 'surface')],
  range: { start: pos(4, 6), end: pos(5, 10) },
  newText: 'surface(2, 3))\nprint(surface',
};

test('applyEdits applies the minimal edits (bottom-up, UTF-16 columns)', () => {
  assert.equal(ne.applyEdits(OLD, RESULT.edits), OLD.replaceAll('area(', 'surface('));
  assert.equal(ne.applyEdits('x = "é😀"\ny\n', [edit(0, 8, 0, 9, '!')]), 'x = "é😀!\ny\n');
  assert.equal(ne.applyEdits('a\n', [edit(1, 0, 1, 0, 'b\n')]), 'a\nb\n');
});

test('renderPlan: each changed line is followed by what it becomes, the hint on the last', () => {
  const plan = ne.renderPlan(LINES, RESULT);
  assert.deepEqual(plan.newLines, ['print(surface(2, 3))', 'print(surface(4, 5))']);
  assert.deepEqual(plan.annotations.map((a) => a.line), [4, 5]);
  assert.equal(plan.annotations[0].text, '  → print(surface(2, 3))');
  assert.match(plan.annotations[1].text, /^ {2}→ print\(surface\(4, 5\)\) {4}spark-ls next edit: Tab accepts, Esc dismisses$/);
  assert.deepEqual(plan.removed, RESULT.edits.map((e) => e.range)); // only the two "area"s
});

test('renderPlan: an insertion of new lines joins them on the last line', () => {
  const result = { range: { start: pos(1, 16), end: pos(1, 16) }, newText: '\n    # area\n    pass', edits: [edit(1, 16, 1, 16, '\n    # area\n    pass')] };
  const plan = ne.renderPlan(LINES, result);
  assert.deepEqual(plan.annotations, [{ line: 1, text: '  → return w * h ⏎     # area ⏎     pass    spark-ls next edit: Tab accepts, Esc dismisses' }]);
  assert.deepEqual(plan.removed, []); // a pure insertion strikes nothing
});

test('renderPlan: a deleted line says so (two empty lines become one)', () => {
  const result = { range: { start: pos(2, 0), end: pos(3, 0) }, newText: '', edits: [edit(2, 0, 3, 0, '')] };
  const plan = ne.renderPlan(LINES, result);
  assert.deepEqual(plan.newLines, ['']);
  assert.equal(plan.annotations.length, 1);
  assert.equal(plan.annotations[0].line, 3);
  assert.match(plan.annotations[0].text, /^ {2}→ \(line removed\)/);
});

test('isValidResult refuses malformed or empty results', () => {
  assert.equal(ne.isValidResult(RESULT, LINES.length), true);
  assert.equal(ne.isValidResult(null, 3), false);
  assert.equal(ne.isValidResult({ ...RESULT, edits: [] }, LINES.length), false);
  assert.equal(ne.isValidResult({ ...RESULT, newText: 3 }, LINES.length), false);
  assert.equal(ne.isValidResult({ ...RESULT, range: { start: pos(5, 0), end: pos(4, 0) } }, LINES.length), false);
  assert.equal(ne.isValidResult({ ...RESULT, range: { start: pos(-1, 0), end: pos(4, 0) } }, LINES.length), false);
  assert.equal(ne.isValidResult({ ...RESULT, range: { start: pos(4, 0), end: pos(40, 0) } }, LINES.length), false);
  assert.equal(ne.isValidResult({ ...RESULT, edits: [{ range: RESULT.range }] }, LINES.length), false);
});

test('stillApplies: only to the same document at the same version', () => {
  assert.equal(ne.stillApplies(RESULT, RESULT.uri, 7), true);
  assert.equal(ne.stillApplies(RESULT, RESULT.uri, 8), false);
  assert.equal(ne.stillApplies(RESULT, 'file:///w/other.py', 7), false);
  assert.equal(ne.stillApplies(undefined, RESULT.uri, 7), false);
});

test('requestParams has the shape spark/nextEdit expects', () => {
  assert.equal(ne.METHOD, 'spark/nextEdit');
  assert.deepEqual(ne.requestParams('file:///w/a.py', { line: 2, character: 4, extra: 1 }),
    { textDocument: { uri: 'file:///w/a.py' }, position: { line: 2, character: 4 } });
});
