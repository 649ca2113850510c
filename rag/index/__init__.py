"""The index and its lifecycle: Chroma access and generations (`store`), the BM25 copy of a generation
(`lexical`), a Chroma server's address, waits and writer lock (`server`), and the one writer (`writer`)."""
