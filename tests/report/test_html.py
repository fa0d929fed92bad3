# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Tests of the self-contained HTML report page."""

from __future__ import annotations

import base64
import io
import tempfile
import unittest
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
from PIL import Image

from monai_fair.report import html_table, image_data_uri, render_study_html

VOID = {"meta", "img", "br", "hr", "link", "input"}


class _Checker(HTMLParser):
    """Collects <img> sources and external references; checks that non-void tags are balanced."""

    def __init__(self):
        super().__init__()
        self.stack, self.errors, self.imgs, self.external, self.classes = [], [], [], [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.classes.append(attrs.get("class"))
        if tag == "img":
            self.imgs.append(attrs.get("src", ""))
        for key in ("src", "href"):
            if key in attrs and not attrs[key].startswith("data:"):
                self.external.append(attrs[key])
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack.pop() != tag:
            self.errors.append(tag)


def _parse(text: str) -> _Checker:
    p = _Checker()
    p.feed(text)
    p.close()
    return p


class TestHtml(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.png = Path(cls.tmp.name) / "plot.png"
        Image.new("RGB", (8, 6), (200, 10, 10)).save(cls.png)
        cls.table = pd.DataFrame({"method": ["<b>bold</b>", "nan_method"], "EOD*": ["0.010 ± 0.002", "n/a"]})

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def _render(self, demo: bool) -> str:
        return render_study_html(
            "Study <report>",
            tables={"Test split": self.table},
            images=[("bars", self.png), ("again", self.png)],
            settings={"dataset": "mimic-cxr", "epsilon": 0.03, "seeds": [42, 73]},
            demo=demo,
            data_label="DEMO DATA (synthetic)" if demo else "MIMIC-CXR",
        )

    def test_image_data_uri(self):
        uri = image_data_uri(self.png)
        self.assertTrue(uri.startswith("data:image/png;base64,"))
        self.assertEqual(base64.b64decode(uri.split(",", 1)[1]), self.png.read_bytes())
        bad = Path(self.tmp.name) / "x.txt"
        bad.write_text("not an image")
        with self.assertRaisesRegex(ValueError, "not a PNG"):
            image_data_uri(bad)

    def test_self_contained_and_parses(self):
        text = self._render(demo=True)
        p = _parse(text)
        self.assertEqual(p.errors, [])
        self.assertEqual(p.stack, [])
        self.assertEqual(p.external, [])
        self.assertNotIn('src="http', text)
        self.assertNotIn("<link", text)
        self.assertNotIn("<script", text)
        self.assertEqual(len(p.imgs), 2)
        for src in p.imgs:
            self.assertTrue(src.startswith("data:image/png;base64,"))
            img = Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1])))
            self.assertEqual(img.size, (8, 6))
        self.assertIn("<style>", text)

    def test_escaping_and_na(self):
        text = self._render(demo=False)
        self.assertIn("&lt;b&gt;bold&lt;/b&gt;", text)
        self.assertNotIn("<b>bold</b>", text)
        self.assertIn("<title>Study &lt;report&gt;</title>", text)
        self.assertIn('<td class="na">n/a</td>', text)
        self.assertIn("[42, 73]", text)  # list settings shown as JSON

    def test_demo_banner_only_when_demo(self):
        demo = _parse(self._render(demo=True))
        real = _parse(self._render(demo=False))
        self.assertIn("demo-banner", demo.classes)
        self.assertNotIn("demo-banner", real.classes)
        self.assertFalse("demo-banner" in self._render(demo=False))

    def test_html_table(self):
        text = html_table(pd.DataFrame({"a": [float("nan"), "1.0"]}), "results")
        self.assertEqual(text.count('class="na"'), 1)
        self.assertTrue(text.startswith('<table class="results">'))


if __name__ == "__main__":
    unittest.main()
