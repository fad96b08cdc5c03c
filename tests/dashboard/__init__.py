"""Dashboard tests: pages rendered by streamlit's AppTest against a seeded SQLite file."""
