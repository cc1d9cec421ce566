"""ORM tables, one file per table. Importing this package registers them all on `Base.metadata`."""

from app.models.backtest import Backtest
from app.models.base import Base
from app.models.clv_fit import ClvFit
from app.models.customer import Customer
from app.models.customer_score import CustomerScore
from app.models.customer_sync_state import CustomerSyncState
from app.models.data_request import DataRequest
from app.models.deleted_order import DeletedOrder
from app.models.flow_trigger import FlowTriggerEvent, FlowTriggerUsage
from app.models.job import Job
from app.models.order import Order
from app.models.order_import import OrderImport
from app.models.order_refund import OrderRefund
from app.models.segment_change import SegmentChange
from app.models.segment_play import SegmentPlay
from app.models.shop import Shop
from app.models.shop_cleanup import ShopCleanup
from app.models.shop_metrics import ShopMetricsSnapshot
from app.models.shop_push_state import ShopPushState
from app.models.shop_segment import ShopSegment
from app.models.shop_settings import ShopSettings
from app.models.shop_sync_state import ShopSyncState
from app.models.stage_change import StageChange
from app.models.sync_bulk_part import SyncBulkPart
from app.models.synced_segment import SyncedSegment

__all__ = [
    "Backtest",
    "ClvFit",
    "CustomerScore",
    "CustomerSyncState",
    "ShopPushState",
    "SyncedSegment",
    "SyncBulkPart",
    "Job",
    "ShopMetricsSnapshot",
    "SegmentChange",
    "ShopSegment",
    "ShopSettings",
    "StageChange",
    "Base",
    "Customer",
    "DataRequest",
    "DeletedOrder",
    "FlowTriggerEvent",
    "FlowTriggerUsage",
    "Order",
    "OrderImport",
    "OrderRefund",
    "SegmentPlay",
    "Shop",
    "ShopCleanup",
    "ShopSyncState",
]
