"""ORM tables, one file per table. Importing this package registers them all on `Base.metadata`."""

from app.models.base import Base
from app.models.customer import Customer
from app.models.data_request import DataRequest
from app.models.deleted_order import DeletedOrder
from app.models.order import Order
from app.models.order_refund import OrderRefund
from app.models.shop import Shop

__all__ = ["Base", "Customer", "DataRequest", "DeletedOrder", "Order", "OrderRefund", "Shop"]
