# Backline image for the scale-out stack (docker-compose.yml): the API, the worker and the
# dashboard all run from it, with different commands.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    TOKENIZERS_PARALLELISM=false

WORKDIR /app

# The pinned set first, so code changes reuse this layer. requirements.lock pins
# torch==2.13.0+cpu, a local version published on PyTorch's CPU index, not on PyPI.
COPY requirements.lock ./
RUN pip install --extra-index-url https://download.pytorch.org/whl/cpu -r requirements.lock

COPY . .
RUN pip install --no-deps -e .

EXPOSE 8000 8501
CMD ["uvicorn", "api.main:create_app", "--factory", "--host", "0.0.0.0", "--port", "8000"]
