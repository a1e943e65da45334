// How the platform reads and writes the analytics tables through the generated client, typed
// under `tsc --strict`: an event with a JSON payload, a scheduled report with its recipients, and
// the aggregates' money as Decimal. The type assertions at the end pin what the client must say
// about each column; a schema change that alters them fails the compilation.
import { PrismaPg } from "@prisma/adapter-pg";

import { Prisma, PrismaClient } from "../generated/client/client.ts";
import type { AnalyticsEvent, RevenueAggregate, ScheduledReport, TournamentAggregate, UserCohort } from "../generated/client/client.ts";

export type Tx = Prisma.TransactionClient;

export function connect(connectionString: string): PrismaClient {
  return new PrismaClient({ adapter: new PrismaPg({ connectionString }) });
}

/** One transaction as the role `analytics_app` for one tenant: row-level security admits only
 * that tenant's rows, for reading and writing; both settings end with the transaction. */
export function asTenant<T>(prisma: PrismaClient, tenantId: string, work: (tx: Tx) => Promise<T>): Promise<T> {
  return prisma.$transaction(async (tx) => {
    await tx.$executeRaw`SET LOCAL ROLE analytics_app`;
    await tx.$queryRaw`SELECT set_config('app.tenant_id', ${tenantId}, true)`;
    return work(tx);
  });
}

export type EventInput = {
  id: string;
  tenantId: string;
  eventType: string;
  payload: Prisma.InputJsonObject;
  userId?: string;
  sessionId?: string;
  at: Date;
};

/** The platform's write of one raw event (docs/events.md); created_at and ingest_xid are the
 * database's. */
export function recordEvent(tx: Tx, event: EventInput): Promise<AnalyticsEvent> {
  return tx.analyticsEvent.create({
    data: {
      id: event.id,
      tenantId: event.tenantId,
      eventType: event.eventType,
      eventData: event.payload,
      userId: event.userId ?? null,
      sessionId: event.sessionId ?? null,
      timestamp: event.at,
    },
  });
}

export type ReportInput = {
  id: string;
  tenantId: string;
  name: string;
  reportType: "revenue_summary" | "user_analytics" | "tournament_performance" | "comprehensive";
  frequency: "daily" | "weekly" | "monthly";
  recipients: string[];
  parameters?: Prisma.InputJsonObject;
  nextRunAt: Date;
};

export function scheduleReport(tx: Tx, report: ReportInput): Promise<ScheduledReport> {
  return tx.scheduledReport.create({
    data: { ...report, parameters: report.parameters ?? Prisma.DbNull },
  });
}

export function addRecipient(tx: Tx, reportId: string, email: string): Promise<ScheduledReport> {
  return tx.scheduledReport.update({ where: { id: reportId }, data: { recipients: { push: email } } });
}

/** The revenue rows of one period type, newest first (the index tenant_id, period_start DESC). */
export function revenueSeries(tx: Tx, periodType: string): Promise<RevenueAggregate[]> {
  return tx.revenueAggregate.findMany({ where: { periodType }, orderBy: { periodStart: "desc" } });
}

/** One row by the unique key (tenant_id, period_type, period_start). */
export function revenueOf(tx: Tx, tenantId: string, periodType: string, periodStart: Date): Promise<RevenueAggregate | null> {
  return tx.revenueAggregate.findUnique({
    where: { tenantId_periodType_periodStart: { tenantId, periodType, periodStart } },
  });
}

/** Money stays exact: Decimal arithmetic, never a float. */
export function totalMrr(rows: RevenueAggregate[]): Prisma.Decimal {
  return rows.reduce((sum, row) => sum.plus(row.mrr), new Prisma.Decimal(0));
}

export function cohortTriangle(tx: Tx): Promise<UserCohort[]> {
  return tx.userCohort.findMany({ orderBy: [{ cohortMonth: "desc" }, { monthNumber: "asc" }] });
}

export function tournaments(tx: Tx, periodType: string): Promise<TournamentAggregate[]> {
  return tx.tournamentAggregate.findMany({ where: { periodType }, orderBy: { periodStart: "desc" } });
}

export function dueReports(tx: Tx, now: Date): Promise<ScheduledReport[]> {
  return tx.scheduledReport.findMany({ where: { isActive: true, nextRunAt: { lte: now } } });
}

// What the generated types must say about the columns.
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
type Expect<T extends true> = T;
export type ColumnTypes = [
  Expect<Equal<AnalyticsEvent["eventData"], Prisma.JsonValue>>,
  Expect<Equal<AnalyticsEvent["userId"], string | null>>,
  Expect<Equal<AnalyticsEvent["timestamp"], Date>>,
  Expect<Equal<ScheduledReport["recipients"], string[]>>,
  Expect<Equal<ScheduledReport["parameters"], Prisma.JsonValue | null>>,
  Expect<Equal<ScheduledReport["lastRunAt"], Date | null>>,
  Expect<Equal<ScheduledReport["isActive"], boolean>>,
  Expect<Equal<RevenueAggregate["mrr"], Prisma.Decimal>>,
  Expect<Equal<RevenueAggregate["paymentCount"], number>>,
  Expect<Equal<RevenueAggregate["ttmCohortMrr"], Prisma.Decimal | null>>,
  Expect<Equal<RevenueAggregate["periodStart"], Date>>,
  Expect<Equal<UserCohort["retentionRate"], Prisma.Decimal>>,
  Expect<Equal<TournamentAggregate["avgDurationMinutes"], Prisma.Decimal | null>>,
  Expect<Equal<TournamentAggregate["mostPopularFormat"], string | null>>,
];

// And what they must refuse; each line fails to compile if the type lets it through.
export function refused(row: RevenueAggregate, event: AnalyticsEvent, report: ScheduledReport): void {
  // @ts-expect-error money is a Decimal, never a float
  const asFloat: number = row.mrr;
  // @ts-expect-error user_id is nullable (strict null checks are on)
  const user: string = event.userId;
  // @ts-expect-error recipients are a list of addresses
  const firstOnly: string = report.recipients;
  void [asFloat, user, firstOnly];
}
