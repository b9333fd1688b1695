# The simulator as a container, installed the same way as the README's quick start.
FROM python:3.11-slim
RUN useradd --create-home --uid 1000 sim
WORKDIR /home/sim/p8815-sim
COPY --chown=sim:sim . .
USER sim
RUN python3 -m venv .venv && .venv/bin/pip install --no-cache-dir .
EXPOSE 8080
ENTRYPOINT [".venv/bin/p8815-sim"]
CMD ["serve", "--host", "0.0.0.0"]
