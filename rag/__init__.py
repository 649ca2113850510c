"""A question-answering assistant over your documents that cites the exact passages it used.

    from rag import Assistant
    answer = Assistant.open().ask("How many 910C processors will Huawei make?")
"""

from rag.assistant import Assistant
from rag.chat import Turn
from rag.errors import RagError
from rag.settings import Settings
from rag.types import Answer, Citation, Hit

__all__ = ["Answer", "Assistant", "Citation", "Hit", "RagError", "Settings", "Turn"]
