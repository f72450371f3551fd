#!/usr/bin/env python3
"""Checks the Swift bindings without a Swift compiler (none exists on the CI machines):

- every `bert_*` function declared in include/bert.h is referenced in bindings/swift/Sources,
- the module map names a header that includes bert.h and links libbert,
- Package.swift declares the system library with pkg-config `bert`,
- every Swift class is `final` and every class holding a handle frees it in `deinit`
  (model, context, tokenizer, classifier, trainer, question answerer, pre-trainer),
- the callback types of bert.h (progress, log) are used, and the classifier/trainer/question
  answerer classes exist,
- every call of a `bert_*` function passes as many arguments as bert.h declares (a signature
  that changed in the header is caught here, not by a Swift compiler),
- every result struct the bindings make (bert_encoding_view, bert_hidden_states_view,
  bert_eval_result, bert_pretrain_eval_result, bert_pretraining_data_summary) gets its `size`
  set before the call, as the header requires.
"""
import pathlib
import re
import sys

root = pathlib.Path(__file__).resolve().parent.parent
header = (root / "include/bert.h").read_text()
swift_dir = root / "bindings/swift"
sources = "\n".join(p.read_text() for p in sorted((swift_dir / "Sources").rglob("*.swift")))
problems = []

functions = sorted(set(re.findall(r"\b(bert_[a-z0-9_]+)\s*\(", header)))
if len(functions) < 20:
    problems.append(f"only {len(functions)} functions found in bert.h: parser out of date?")
for f in functions:
    if not re.search(r"\b" + f + r"\b", sources):
        problems.append(f"{f} (declared in bert.h) is not used in bindings/swift/Sources")

modulemap = (swift_dir / "Sources/CBert/module.modulemap").read_text()
m = re.search(r'header\s+"([^"]+)"', modulemap)
if not m:
    problems.append("module.modulemap names no header")
else:
    named = swift_dir / "Sources/CBert" / m.group(1)
    if m.group(1) != "bert.h" and not (named.is_file() and re.search(r"#include\s*[<\"]bert\.h[>\"]", named.read_text())):
        problems.append(f"module.modulemap header {m.group(1)} does not include bert.h")
if not re.search(r'link\s+"bert"', modulemap):
    problems.append('module.modulemap does not link "bert"')

package = (swift_dir / "Package.swift").read_text()
if not re.search(r'\.systemLibrary\(\s*name:\s*"CBert".*pkgConfig:\s*"bert"', package, re.S):
    problems.append("Package.swift lacks .systemLibrary(name: \"CBert\", ..., pkgConfig: \"bert\")")

for cls in re.finditer(r"^(.*)\bclass\s+(\w+)", sources, re.M):
    if "final" not in cls.group(1):
        problems.append(f"class {cls.group(2)} is not final")
for free in ("bert_model_free", "bert_context_free", "bert_tokenizer_free", "bert_classifier_free",
             "bert_trainer_free", "bert_qa_free", "bert_pretrainer_free"):
    if not re.search(r"deinit\s*\{[^}]*" + free, sources):
        problems.append(f"no deinit calls {free}")

for name in ("bert_progress_callback", "bert_log_callback"):
    if name not in header:
        problems.append(f"{name} is not declared in bert.h: parser out of date?")
for cls in ("Classifier", "ClassifierContext", "Trainer", "QuestionAnswerer", "QAContext", "Pretrainer"):
    if not re.search(r"final\s+class\s+" + cls + r"\b", sources):
        problems.append(f"no final class {cls} in bindings/swift/Sources")
if "bert_log_callback" not in sources:
    problems.append("bert_log_callback is not used (Log.set)")


def split_args(text):
    """Top-level comma-separated pieces of an argument list (closures and nested calls kept)."""
    depth, pieces, cur = 0, [], ""
    for ch in text:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        if ch == "," and depth == 0:
            pieces.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        pieces.append(cur)
    return pieces


def call_args(text, start):
    """The text between the parenthesis at `start` and its match."""
    depth = 0
    for i in range(start, len(text)):
        if text[i] == "(":
            depth += 1
        elif text[i] == ")":
            depth -= 1
            if depth == 0:
                return text[start + 1:i]
    return None


declared = {}
for m in re.finditer(r"^[A-Za-z_][\w \*]*?\b(bert_[a-z0-9_]+)\(([^;{]*?)\);", header, re.M | re.S):
    params = m.group(2).strip()
    declared[m.group(1)] = 0 if params == "void" else len(split_args(params))
if len(declared) < 20:
    problems.append(f"only {len(declared)} declarations parsed in bert.h: parser out of date?")
code = "\n".join(line for line in sources.splitlines() if not line.lstrip().startswith("//"))
calls = 0
for m in re.finditer(r"\b(bert_[a-z0-9_]+)\(", code):
    name = m.group(1)
    if name not in declared:
        continue
    args = call_args(code, m.end() - 1)
    if args is None:
        problems.append(f"unbalanced call of {name}")
        continue
    calls += 1
    n = len(split_args(args))
    if n != declared[name]:
        line = code[:m.start()].count("\n") + 1
        problems.append(f"{name} called with {n} arguments (line {line} of the joined sources), "
                        f"bert.h declares {declared[name]}")

for m in re.finditer(r"var\s+(\w+)\s*=\s*(bert_encoding_view|bert_hidden_states_view|bert_eval_result"
                     r"|bert_pretrain_eval_result|bert_pretraining_data_summary)\(\)", code):
    var, struct = m.group(1), m.group(2)
    after = code[m.end():m.end() + 400]
    if not re.search(re.escape(var) + r"\.size\s*=\s*MemoryLayout<" + struct + r">\.size", after):
        problems.append(f"{struct} {var} is passed without its size set (MemoryLayout<{struct}>.size)")

if problems:
    print("check_swift: FAILED", *problems, sep="\n  ")
    sys.exit(1)
print(f"check_swift: ok ({len(functions)} bert_* functions of bert.h referenced, {calls} calls with the "
      "declared number of arguments, result struct sizes set; module map and deinit checked)")
