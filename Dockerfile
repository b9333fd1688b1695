# The simulator as a container: `docker run -p 8080:8080 IMAGE serve mall`.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH \
    P8815_SIM_HOST=0.0.0.0

WORKDIR /src
RUN python -m venv /opt/venv

# The dependencies in a layer of their own: rebuilt only when pyproject.toml changes.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > requirements.txt \
    && pip install --no-cache-dir -r requirements.txt

# The package itself (its shipped scenarios included).
COPY README.md ./
COPY simulator ./simulator
RUN pip install --no-cache-dir --no-deps . && rm -rf /src/*

RUN useradd --create-home --uid 1000 sim
USER 1000:1000
WORKDIR /home/sim

EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/sim/v1/health' % os.environ.get('P8815_SIM_PORT', '8080'), timeout=4)"]
ENTRYPOINT ["p8815-sim"]
CMD ["serve"]
