"""The knowledge-base stage: an organisation's documents chunked by their structure and indexed for hybrid
retrieval (BM25 over jieba-segmented Chinese + dense e5 vectors, fused by reciprocal rank)."""
