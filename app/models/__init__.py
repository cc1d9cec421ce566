"""ORM tables, one file per table. Importing this package registers them all on `Base.metadata`."""

from app.models.backtest import Backtest
from app.models.base import Base
from app.models.clv_fit import ClvFit
from app.models.customer import Customer
from app.models.customer_score import CustomerScore
from app.models.data_request import DataRequest
from app.models.deleted_order import DeletedOrder
from app.models.job import Job
from app.models.order import Order
from app.models.order_import import OrderImport
from app.models.order_refund import OrderRefund
from app.models.shop import Shop
from app.models.shop_metrics import ShopMetricsSnapshot
from app.models.shop_segment import ShopSegment
from app.models.shop_settings import ShopSettings
from app.models.shop_sync_state import ShopSyncState
from app.models.stage_change import StageChange

__all__ = [
    "Backtest",
    "ClvFit",
    "CustomerScore",
    "Job",
    "ShopMetricsSnapshot",
    "ShopSegment",
    "ShopSettings",
    "StageChange",
    "Base",
    "Customer",
    "DataRequest",
    "DeletedOrder",
    "Order",
    "OrderImport",
    "OrderRefund",
    "Shop",
    "ShopSyncState",
]
