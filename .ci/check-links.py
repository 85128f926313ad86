#!/usr/bin/env python3
"""Fails on a broken relative link: in the built book (HTML files, with #anchors checked) and in
the Markdown files at the repository's top (README)."""
import html.parser
import os
import re
import sys
import urllib.parse

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
book = os.path.join(root, "docs", "book")


class Links(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.links, self.ids = [], set()

    def handle_starttag(self, tag, attrs):
        for k, v in attrs:
            if k == "id" and v:
                self.ids.add(v)
            if k in ("href", "src") and v:
                self.links.append(v)


def parse(path, cache={}):
    if path not in cache:
        p = Links()
        with open(path, encoding="utf-8") as f:
            p.feed(f.read())
        cache[path] = p
    return cache[path]


broken = []
pages = 0
for dirpath, _, files in os.walk(book):
    for name in files:
        if not name.endswith(".html"):
            continue
        page = os.path.join(dirpath, name)
        pages += 1
        for link in parse(page).links:
            u = urllib.parse.urlsplit(link)
            if u.scheme or u.netloc or link.startswith(("mailto:", "javascript:", "data:")):
                continue
            path = urllib.parse.unquote(u.path)
            if not path:
                target = page
            elif path.startswith("/"):  # the site's root is the book's
                target = os.path.normpath(os.path.join(book, path.lstrip("/")))
            else:
                target = os.path.normpath(os.path.join(dirpath, path))
            if os.path.isdir(target):
                target = os.path.join(target, "index.html")
            if not os.path.exists(target):
                broken.append(f"{os.path.relpath(page, root)}: {link} (no file)")
                continue
            if u.fragment and target.endswith(".html") and u.fragment not in parse(target).ids:
                broken.append(f"{os.path.relpath(page, root)}: {link} (no anchor)")

if pages == 0:
    broken.append("docs/book has no HTML pages: was the book built?")

for md in ("README.md",):
    text = open(os.path.join(root, md), encoding="utf-8").read()
    for link in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"^[a-z]+:", link) or link.startswith("#"):
            continue
        if not os.path.exists(os.path.join(root, link.split("#")[0])):
            broken.append(f"{md}: {link} (no file)")

for b in broken:
    print("broken link:", b)
print(f"checked {pages} pages of the book and the README: {len(broken)} broken links")
sys.exit(1 if broken else 0)
