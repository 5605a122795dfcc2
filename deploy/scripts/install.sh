#!/usr/bin/env bash
# Installs dependencies from the lockfile, generates the Prisma clients and builds every
# package. Nothing is fetched from outside the npm registry (see README: Prisma engines).
set -euo pipefail
cd "$(dirname "$0")/../.."

if ! command -v pnpm >/dev/null 2>&1; then
  echo "[portcullis] installing pnpm 10 with npm (corepack is not used)"
  npm install -g pnpm@10 >/dev/null
fi
pnpm install --frozen-lockfile
pnpm run prisma:generate
pnpm run build
