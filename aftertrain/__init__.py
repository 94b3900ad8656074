"""After training: did the fine-tune help (`aftertrain.eval`), and the model where people run it
(`aftertrain.export`: GGUF for llama.cpp, Ollama, LM Studio), both in the chat template the model
was trained with (`components.chat_template`)."""
