"""The layering checker against small trees made for each rule: it must
pass a clean tree and name the file, line and rule of each violation."""
import pathlib
import subprocess
import sys
import tempfile
import unittest

CHECKER = pathlib.Path(__file__).with_name("check_layers.py")

LAYERS = """\
low:  tlsedge_low:
mid:  tlsedge_mid:  low
top:  tlsedge_top:  low mid top/sub
top/sub: tlsedge_sub: low
"""

CMAKE = {
    "low": "tlsedge_library(tlsedge_low a.cc)\n",
    "mid": "tlsedge_library(tlsedge_mid a.cc)\n"
           "target_link_libraries(tlsedge_mid PRIVATE tlsedge_low PUBLIC boringssl::ssl)\n",
    "top": "tlsedge_library(tlsedge_top a.cc)\n"
           "target_link_libraries(tlsedge_top\n  PRIVATE tlsedge_low tlsedge_mid tlsedge_sub)\n",
    "top/sub": "tlsedge_library(tlsedge_sub a.cc)\n"
               "target_link_libraries(tlsedge_sub PRIVATE tlsedge_low)  # the sub layer\n",
}

SOURCES = {
    "low/a.h": "#pragma once\n#include <string>\nnamespace tlsedge::low {\n}\n",
    "mid/a.h": '#pragma once\n#include "low/a.h"\n',
    "top/a.cc": '#include "top/a.h"\n#include "mid/a.h"\n#include "top/sub/a.h"\n',
    "top/a.h": "#pragma once\n",
    "top/sub/a.h": '#pragma once\n#include "low/a.h"\nnamespace tlsedge::top::sub {\n}\n',
}


class CheckLayersTest(unittest.TestCase):
    def tree(self, changes=None):
        root = pathlib.Path(self.enterContext(tempfile.TemporaryDirectory()))
        files = {f"{folder}/CMakeLists.txt": text for folder, text in CMAKE.items()}
        files.update(SOURCES)
        files["layers.txt"] = LAYERS
        files.update(changes or {})
        for name, text in files.items():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_text(text)
        return root

    def check(self, root):
        run = subprocess.run([sys.executable, CHECKER, root, "--layers", root / "layers.txt"],
                             capture_output=True, text=True, timeout=60)
        return run.returncode, run.stdout

    def test_a_clean_tree_passes(self):
        code, out = self.check(self.tree())
        self.assertEqual(code, 0, out)
        self.assertIn("4 layers clean", out)

    def test_an_upward_include_fails_with_file_and_line(self):
        code, out = self.check(self.tree({"mid/a.h": '#pragma once\n\n#include "top/a.h"\n'}))
        self.assertEqual(code, 1)
        self.assertIn("mid/a.h:3: includes top/a.h: mid may not use top", out)

    def test_a_nested_layer_is_its_own(self):
        # top/sub may use low only, though top may use mid.
        code, out = self.check(self.tree({"top/sub/a.h": '#include "mid/a.h"\n'}))
        self.assertEqual(code, 1)
        self.assertIn("top/sub/a.h:1: includes mid/a.h: top/sub may not use mid", out)

    def test_a_namespace_of_another_folder_fails(self):
        code, out = self.check(self.tree({"mid/a.h": "#pragma once\nnamespace tlsedge::low {\n}\n"}))
        self.assertEqual(code, 1)
        self.assertIn("mid/a.h:2: namespace tlsedge::low: files of mid open tlsedge::mid", out)

    def test_a_link_beyond_the_matrix_fails(self):
        code, out = self.check(self.tree({
            "low/CMakeLists.txt":
                "tlsedge_library(tlsedge_low a.cc)\ntarget_link_libraries(tlsedge_low PRIVATE tlsedge_mid)\n"}))
        self.assertEqual(code, 1)
        self.assertIn("tlsedge_low links tlsedge_mid, but low may not use mid", out)

    def test_a_missing_link_fails(self):
        code, out = self.check(self.tree({
            "top/CMakeLists.txt":
                "tlsedge_library(tlsedge_top a.cc)\n"
                "target_link_libraries(tlsedge_top PRIVATE tlsedge_low tlsedge_sub)\n"}))
        self.assertEqual(code, 1)
        self.assertIn("tlsedge_top does not link tlsedge_mid", out)

    def test_a_public_project_link_fails(self):
        code, out = self.check(self.tree({
            "mid/CMakeLists.txt":
                "tlsedge_library(tlsedge_mid a.cc)\ntarget_link_libraries(tlsedge_mid PUBLIC tlsedge_low)\n"}))
        self.assertEqual(code, 1)
        self.assertIn("tlsedge_mid links tlsedge_low PUBLIC", out)


if __name__ == "__main__":
    unittest.main()
