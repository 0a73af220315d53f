"""The language server (`sentra-lang lsp`): diagnostics, hover, definitions, formatting and
completion for `.sentra` policies and `.sentra-test` suites, over LSP on standard streams.

One module per job: `text` (documents and LSP positions), `symbols` (what a name in a file
means, and where it is declared), `snapshots` (a document analysed with the compiler's public
APIs), `hover`, `completion`, and `server` (the pygls wiring). Only `server` imports pygls.
"""
