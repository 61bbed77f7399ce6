"""ODTrack web demo: ``python demo/app.py`` here, or ``python app.py`` on a Hugging Face Space.

The page and its callbacks live in the package (``odtrack_hf.web_demo``), so ``odtrack demo --web`` serves
the same page from a pip install; this file only starts it. In the Space that ``scripts/export_space.py``
writes, the package lies beside this file: ``python app.py`` puts this folder first on ``sys.path``, so
that copy is imported.
"""

from odtrack_hf.web_demo import build_demo

demo = build_demo()

if __name__ == "__main__":
    demo.launch()
