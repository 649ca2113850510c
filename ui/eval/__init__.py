"""Evaluation and benchmarks: retrieval (BEIR), answers (SQuAD), a user's golden questions, speed."""
