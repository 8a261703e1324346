"""System messages and outbound text shaping.

`templates` picks and renders a system message (entry-point override, else the locale's file under
message_templates/) in a sandbox; `context` is what a template may use; `text` turns agent HTML into
plain text and splits it at a channel's limit.
"""

from connector.messages.context import MessageContext, sample_context
from connector.messages.templates import MessageTemplates, TemplateError, resolve_locale
from connector.messages.text import html_to_text, page_push_text, split_text, truncate_text

__all__ = [
    "MessageContext",
    "MessageTemplates",
    "TemplateError",
    "html_to_text",
    "page_push_text",
    "resolve_locale",
    "sample_context",
    "split_text",
    "truncate_text",
]
