// Tokenize text with a TextMate grammar as VS Code does (vscode-textmate on the Oniguruma
// regex engine, vscode-oniguruma). Used by tests/editors/test_textmate_node.py.
//   node textmate.js < {"grammar": PATH, "texts": [TEXT, ...]}
//   > [[[{"text": "...", "scopes": ["source.sentra", ...]}, ...] per line] per text]
"use strict";

const fs = require("fs");
const path = require("path");
const oniguruma = require("vscode-oniguruma");
const textmate = require("vscode-textmate");

async function main() {
  const request = JSON.parse(fs.readFileSync(0, "utf8"));
  const wasm = fs.readFileSync(path.join(path.dirname(require.resolve("vscode-oniguruma")),
                                         "onig.wasm"));
  await oniguruma.loadWASM(wasm.buffer);
  const raw = textmate.parseRawGrammar(fs.readFileSync(request.grammar, "utf8"), request.grammar);
  const registry = new textmate.Registry({
    onigLib: Promise.resolve({
      createOnigScanner: (patterns) => new oniguruma.OnigScanner(patterns),
      createOnigString: (text) => new oniguruma.OnigString(text),
    }),
    loadGrammar: async (scope) => (scope === raw.scopeName ? raw : null),
  });
  const grammar = await registry.loadGrammar(raw.scopeName);
  const result = request.texts.map((text) => {
    let stack = textmate.INITIAL;
    return text.split("\n").map((line) => {
      const tokenized = grammar.tokenizeLine(line, stack);
      stack = tokenized.ruleStack;
      return tokenized.tokens.map((token) => ({
        text: line.slice(token.startIndex, token.endIndex),
        scopes: token.scopes,
      }));
    });
  });
  process.stdout.write(JSON.stringify(result));
}

main().catch((error) => {
  process.stderr.write(String(error && error.stack ? error.stack : error));
  process.exit(1);
});
