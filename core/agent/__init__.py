"""The agent runtime's view of a chat model: messages, tool specs and the ``ChatModel`` port."""
