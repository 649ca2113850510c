"""The serving probe of `rag bench query`, run as `python -m ui.bench.probe SETTINGS_JSON QUESTIONS_FILE` in a fresh
process: open the index, answer the questions, print this process's memory (what `rag serve` would hold) as JSON."""

from __future__ import annotations

import json
import sys
import time


def main(settings_json: str, questions_file: str) -> None:
    began = time.perf_counter()
    from rag import Assistant, Settings
    from rag.memory import memory_mib

    imported = memory_mib()["rss"]
    assistant = Assistant.open(Settings(**json.loads(settings_json)))
    opened = memory_mib()["rss"]
    assistant.ask("warm up")
    first = time.perf_counter() - began
    answered = memory_mib()["rss"]
    with open(questions_file, encoding="utf-8") as handle:
        for question in json.load(handle):
            assistant.ask(question)
    end = memory_mib()
    print(json.dumps({"peak_rss_mib": end["peak"], "rss_mib": {"after_import": imported, "after_open": opened,
                      "after_first_answer": answered, "after_all": end["rss"]},
                      "open_and_first_answer_seconds": round(first, 2)}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
