// Oracle for bpe_differential_test: encodes each string of a JSON array with the npm package's
// own encode() and writes a JSON array of id arrays.
//   node js_encode.js <gpt-3-encoder package dir> <texts.json> <ids.json>
'use strict';
const fs = require('fs');
const path = require('path');

const [packageDir, inPath, outPath] = process.argv.slice(2);
if (!outPath) {
  console.error('usage: node js_encode.js <package dir> <texts.json> <ids.json>');
  process.exit(2);
}
const { encode } = require(path.resolve(packageDir, 'index.js'));
const texts = JSON.parse(fs.readFileSync(inPath, 'utf8'));
fs.writeFileSync(outPath, JSON.stringify(texts.map((t) => encode(t))));
