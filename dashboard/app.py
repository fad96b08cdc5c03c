"""Backline dashboard entry point: page config and routing, nothing else.

Run with ``python -m streamlit run dashboard/app.py``. Pages live in ``app_pages/``; they read
through ``dashboard.data`` and never write: every change goes through the API.
"""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

# `streamlit run` puts this file's folder on sys.path, not the project root the pages import
# `dashboard` and `core` from.
_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

st.set_page_config(page_title="Backline", page_icon=":material/graphic_eq:", layout="wide")

page = st.navigation(
    [
        st.Page("app_pages/calls.py", title="Calls", icon=":material/call:", default=True),
        st.Page("app_pages/memory.py", title="Memory", icon=":material/psychology:"),
        st.Page(
            "app_pages/prompts.py", title="Prompts & Rollouts", icon=":material/rocket_launch:"
        ),
        st.Page("app_pages/knowledge.py", title="Knowledge", icon=":material/menu_book:"),
        st.Page("app_pages/overview.py", title="Overview", icon=":material/monitoring:"),
        st.Page("app_pages/evals.py", title="Evals", icon=":material/fact_check:"),
        st.Page("app_pages/quality.py", title="Quality & Drift", icon=":material/query_stats:"),
        st.Page("app_pages/traces.py", title="Traces", icon=":material/timeline:"),
        st.Page("app_pages/tools.py", title="Tools", icon=":material/build:"),
        st.Page("app_pages/alerts.py", title="Alerts", icon=":material/notifications:"),
    ]
)
st.sidebar.caption("Backline · read-only view")
page.run()
