FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends libpq5 && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml README.md ./
COPY naap_site naap_site
COPY telemetry telemetry
COPY sla sla
COPY leaderboard leaderboard
RUN pip install --no-cache-dir .
COPY . .
RUN NAAP_SECRET_KEY=build python manage.py collectstatic --noinput -v0
EXPOSE 8000
CMD ["uvicorn", "naap_site.asgi:application", "--host", "0.0.0.0", "--port", "8000"]
