// One round trip through the generated client and @prisma/adapter-pg, as one tenant under
// row-level security: writes an event and a scheduled report, reads every analytics table, and
// tries to write and change another tenant's rows. Prints what it saw as JSON on stdout, for
// analytics_pipeline_tests/platform/ to check against the database.
//   DATABASE_URL=postgresql://... TENANT=org-a OTHER_TENANT=org-b node build/check/roundtrip.js
import {
  addRecipient,
  asTenant,
  cohortTriangle,
  connect,
  dueReports,
  recordEvent,
  revenueOf,
  revenueSeries,
  scheduleReport,
  totalMrr,
  tournaments,
} from "./usage.ts";

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}

const day = (date: Date): string => date.toISOString().slice(0, 10);

async function main(): Promise<void> {
  const tenant = required("TENANT");
  const other = required("OTHER_TENANT");
  const prisma = connect(required("DATABASE_URL"));
  try {
    const seen = await asTenant(prisma, tenant, async (tx) => {
      const event = await recordEvent(tx, {
        id: `${tenant}-prisma-event`,
        tenantId: tenant,
        eventType: "payment_completed",
        payload: { amount: "19.99", currency: "EUR", plan: { id: "pro", seats: 3 }, tags: ["prisma", "ünïcode"] },
        userId: `${tenant}-user`,
        at: new Date("2026-03-04T05:06:07.000Z"),
      });
      const report = await scheduleReport(tx, {
        id: `${tenant}-prisma-report`,
        tenantId: tenant,
        name: "Weekly revenue",
        reportType: "revenue_summary",
        frequency: "weekly",
        recipients: ["cfo@example.com"],
        parameters: { period_type: "month" },
        nextRunAt: new Date("2026-03-09T08:00:00.000Z"),
      });
      const withSecond = await addRecipient(tx, report.id, "ops@example.com");
      const months = await revenueSeries(tx, "month");
      const march = await revenueOf(tx, tenant, "month", new Date("2026-03-01T00:00:00.000Z"));
      return {
        event: { id: event.id, createdAt: event.createdAt.toISOString(), eventData: event.eventData },
        report: { id: report.id, recipients: withSecond.recipients, isActive: report.isActive },
        revenue: months.map((row) => ({ id: row.id, periodStart: day(row.periodStart), mrr: row.mrr.toString(), arr: row.arr.toString() })),
        marchMrr: march?.mrr.toString() ?? null,
        totalMrr: totalMrr(months).toString(),
        events: (await tx.analyticsEvent.findMany({ orderBy: { id: "asc" } })).map((row) => row.id),
        reports: (await tx.scheduledReport.findMany({ orderBy: { id: "asc" } })).map((row) => row.id),
        dueReports: (await dueReports(tx, new Date("2030-01-01T00:00:00.000Z"))).map((row) => row.id),
        cohorts: (await cohortTriangle(tx)).map((row) => ({ id: row.id, retentionRate: row.retentionRate.toString() })),
        tournaments: (await tournaments(tx, "day")).map((row) => row.id),
        tenantsSeen: [...new Set((await tx.analyticsEvent.findMany({ select: { tenantId: true } })).map((row) => row.tenantId))],
      };
    });

    let otherTenantInsert = "accepted";
    try {
      await asTenant(prisma, tenant, (tx) =>
        recordEvent(tx, { id: `${other}-forged`, tenantId: other, eventType: "page_view", payload: {}, at: new Date() }),
      );
    } catch (error) {
      otherTenantInsert = `refused: ${error instanceof Error ? error.message : String(error)}`;
    }
    const otherTenantUpdate = await asTenant(prisma, tenant, (tx) =>
      tx.revenueAggregate.updateMany({ where: { tenantId: other }, data: { mrr: 0 } }),
    );

    process.stdout.write(JSON.stringify({ ...seen, otherTenantInsert, otherTenantRowsUpdated: otherTenantUpdate.count }));
  } finally {
    await prisma.$disconnect();
  }
}

await main();
