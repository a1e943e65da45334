// Prisma's configuration for this folder; when merging, copy `experimental` and `tables` into
// the platform's own prisma.config.ts (README.md).
import { defineConfig } from "prisma/config";

export default defineConfig({
  schema: "schema.prisma",
  // The analytics pipeline's migrations own the five analytics tables: the platform's
  // `prisma migrate` must neither create, change nor drop them.
  experimental: { externalTables: true },
  tables: {
    external: [
      "public.analytics_events",
      "public.revenue_aggregates",
      "public.user_cohorts",
      "public.tournament_aggregates",
      "public.scheduled_reports",
    ],
  },
});
