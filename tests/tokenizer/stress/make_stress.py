#!/usr/bin/env python3
"""Regenerates gpt2_stress.json, the tokenizer stress set (deterministic).

Hand-written cases cover each branch of GPT-2's pre-tokenizer pattern and each
script/emoji family; seeded random mixtures of the same snippets follow.
Characters are limited to Unicode 13 assignments so the Unicode database of
utf8proc and of node's ICU agree (see docs/TOKENIZERS.md)."""
import json, random, os

cases = [
    # empty and trivial
    "", " ", "a", "  ", "\n", "\t", "\x00", "\x01\x02\x03", "\x7f", "hello", " hello", "Hello world",
    # contractions, lower and upper case, odd placements
    "I'm you're he's we've they'll I'd don't can't won't",
    "I'M YOU'RE HE'S WE'VE THEY'LL I'D DON'T CAN'T WON'T",
    "'s 't 're 've 'm 'll 'd", "'S 'T 'RE 'VE 'M 'LL 'D", "'s't're've'm'll'd", "'sam 'tis 'rex 'veal 'mom 'lly 'dd",
    "rock'n'roll", "O'Neill's", "'''", "''s", " 's", "it's's", "'", "x'", "'\n", "l'amour d'été",
    "he said 'hello'", "we''ll", "'  s", "\u2019s it\u2019s don\u2019t",
    # whitespace runs and \s+(?!\S)
    "a  b", "a   b", "a    b", "a\tb", "a \tb", "a\t b", "  leading", "   leading3", "trailing ", "trailing  ",
    "trailing   \n", "a\n\nb", "a \n b", "a\n \nb", "\n\n\n", "   ", "\t\t\ta", " \n", "\n ", "x\r\ny", "x\r\n\r\ny",
    "a \x0b\x0cb", "\x1c\x1d\x1e\x1f a", "end with spaces    ", "  \t  \n  x", "1  2   3", "!  ?", "a  !", "a \n!",
    # Unicode spaces (JS \s: Zs, U+FEFF, U+2028/9; NEL U+0085 is not \s in JS)
    "a\u00a0b", "\u00a0\u00a0a", "a \u00a0b", "a\u00a0 b", "a\u2003b", "a\u2002\u2003\u2004b", "a\u3000\u3000b",
    "a\u2028b", "a\u2029b", "\ufeffa", "a\ufeff\ufeffb", "a\u202fb", "a\u205fb", "a\u1680b", "a\u0085b",
    "a\u180eb", "a\u200bb", "a\u200c\u200db", "a\u2060b", "x \u3000y", "\u00a0", "\u3000", "a\u2009\u200ab",
    # accented Latin, combining marks
    "caf\u00e9 na\u00efve r\u00e9sum\u00e9", "\u00c5ngstr\u00f6m", "\u00c9COLE", "Stra\u00dfe", "cafe\u0301",
    "a\u0308\u0323", "Z\u0351\u0360a\u035bl\u0346g\u0358o", "\u0301alone", " \u0301", "x \u0300\u0301\u0302",
    "\u00d8resund \u00e6\u00f8\u00e5", "\u0141\u00f3d\u017a", "\u0130stanbul \u0131", "ǅǈǋ titlecase",
    # Vietnamese, CJK, Korean, Japanese
    "Ti\u1ebfng Vi\u1ec7t c\u00f3 d\u1ea5u", "Nguy\u1ec5n V\u0103n A", "Vie\u0302\u0323t (decomposed)",
    "\u4e2d\u6587\u6d4b\u8bd5", "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8\u3002", "\ud55c\uad6d\uc5b4 \ud14d\uc2a4\ud2b8",
    "\u6f22\u5b57\u304b\u306a\u30ab\u30ca", "\u3053\u3093\u306b\u3061\u306f\u3001\u4e16\u754c\uff01", "\uff21\uff22\uff23\uff11\uff12\uff13",
    "\u1100\u1161\u11a8", "\U00020000\U0002a6d6",
    # RTL and Indic scripts
    "\u0645\u0631\u062d\u0628\u0627 \u0628\u0627\u0644\u0639\u0627\u0644\u0645", "\u05e9\u05dc\u05d5\u05dd \u05e2\u05d5\u05dc\u05dd",
    "\u05e9\u05b8\u05c1\u05dc\u05d5\u05b9\u05dd", "\u0646\u064e\u0635\u0651", "\u0928\u092e\u0938\u094d\u0924\u0947 \u0926\u0941\u0928\u093f\u092f\u093e",
    "\u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35\u0e04\u0e23\u0e31\u0e1a", "\u0bb5\u0ba3\u0b95\u0bcd\u0b95\u0bae\u0bcd",
    "\u0f56\u0f7c\u0f51\u0f0b", "\u1200\u1208\u1218", "\u0540\u0561\u0575\u0565\u0580\u0565\u0576", "\u10e5\u10d0\u10e0\u10d7\u10e3\u10da\u10d8",
    "\u0417\u0434\u0440\u0430\u0432\u0441\u0442\u0432\u0443\u0439, \u043c\u0438\u0440!", "\u0393\u03b5\u03b9\u03ac \u03c3\u03bf\u03c5",
    "\u200fRTL mark\u200e", "\u202eoverride\u202c",
    # emoji: skin tones, ZWJ sequences, flags, keycaps, variation selectors
    "\U0001f44d", "\U0001f44d\U0001f3fd", " \U0001f44d\U0001f3ff ok", "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466",
    "\U0001f3f3\ufe0f\u200d\U0001f308", "\U0001f1fa\U0001f1f8\U0001f1eb\U0001f1f7", "\U0001f9d1\U0001f3ff\u200d\U0001f4bb",
    "\u2764\ufe0f", "1\ufe0f\u20e3 #\ufe0f\u20e3", "\u00a9\u00ae\u2122", "\U0001f600\U0001f601 smile", "I \u2764 NY",
    "\U0001f3f4\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f", "a\U0001f600b", "\U0001f44b\U0001f3fb\U0001f44b\U0001f3fc",
    # numbers
    "123", "1234567890", "1,234.56", "3.14159", " 42", "-42", "+1", "1e10", "0x1F", "2024-01-01", "v1.2.3",
    "\u0663\u0664\u0665", "\u00bd \u00be", "\u216b", "\u2460\u2461", "\u00b2\u00b3", "\U0001d7d8\U0001d7d9", "12abc34", "abc123def",
    "\u0967\u0968\u0969", "\uff10\uff11", "1\u00a0000", "9\u2009999",
    # code
    "def f(x):\n    return x**2\n", "for (int i = 0; i < n; i++) {\n\tsum += a[i];\n}\n",
    "<div class=\"a\">Hi</div>", "SELECT * FROM t WHERE id=1;", "#include <stdio.h>\nint main(void){return 0;}",
    "if x != y && z >= 0 || !w:", "    indented\n        more\n", "// comment\n/* block */", "a_b_c ABC_DEF __init__",
    "snake_case camelCase PascalCase kebab-case", "print(\"hello\\n\")", "x=[1,2,3];y={'a':1}", "$var @attr %mod ^xor ~not `tick`",
    # URLs and mail
    "https://example.com/path?q=1&r=2#frag", "http://www.example.org:8080/a/b.html", "mailto:someone@example.com",
    "ftp://x.y/z", "www.google.com", "user.name+tag@sub.domain.co.uk",
    # special token text
    "<|endoftext|>", "a<|endoftext|>b", "<|endoftext|><|endoftext|>", " <|endoftext|> ", "<|endoftext|", "<|endoftext|>\n\nNext",
    # punctuation and symbols
    "hello!!!???", "...", "\u2014\u2013-", "\u201cquotes\u201d \u2018single\u2019", "\u00bfQu\u00e9?", "\u00a1Hola!",
    "\u2211\u222b\u221a\u221e\u2260", "\U0001d518\U0001d52b\U0001d526\U0001d520\U0001d52c\U0001d521\U0001d522", "\ue000\uf8ff",
    "\uffff\ufffe", "\U0010fffd", "\ufffd", "a,b,c", ",,,", ", ,", "a, b", ",a", "a,", "\u3001\u3002", "***bold***", "->=>",
    # long runs
    "a" * 1000, " " * 100 + "x", "\n" * 50, "!" * 300, "9" * 500, "ab" * 300, "\u00e9" * 200, " a" * 200,
    "\U0001f600" * 50, "\u4e2d" * 300, "\t " * 100,
]

palette = [
    "the", " The", "I", "'s", "'ll", "'RE", "don't", " ", "  ", "\t", "\n", "\r\n", "\u00a0", "\u3000", "\u2028",
    "123", " 45", "\u0663", "\u00bd", "!", "?!", "...", ",", ".", "\"", "'", "(", ")", "caf\u00e9", "e\u0301",
    "Vi\u1ec7t", "\u4e2d\u6587", "\u65e5\u672c", "\ud55c", "\u0645\u0631\u062d\u0628\u0627", "\u05e9\u05dc\u05d5\u05dd", "\u0928\u092e\u0938\u094d\u0924\u0947",
    "\U0001f44d\U0001f3fd", "\U0001f468\u200d\U0001f469\u200d\U0001f467", "\U0001f1fa\U0001f1f8", "\u2764\ufe0f", "http://a.b/c?d=1",
    "x_y", "CamelCase", "<|endoftext|>", "\ufeff", "\u0085", "\u200b", "-", "_", "#", "@", "\u2014", "\U0001d518",
]
rng = random.Random(20240601)
for _ in range(300):
    k = rng.randint(1, 24)
    cases.append("".join(rng.choice(palette) for _ in range(k)))

here = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(here, "gpt2_stress.json"), "w", encoding="utf-8") as f:
    json.dump(cases, f, ensure_ascii=True, indent=0)
    f.write("\n")
print(len(cases), "cases")
